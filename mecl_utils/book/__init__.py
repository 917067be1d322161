"""The book: chapters executed with papermill (typed parameters, a chapter cache), then Jupyter Book."""
