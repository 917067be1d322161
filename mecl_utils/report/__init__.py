"""Reading the results: Table IV, the figures and tables, and the sentences the chapters print."""
