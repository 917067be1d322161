"""The networks (Tables I-II, Fig. 7): data and splits, backbones, branches and where they attach, costs."""
