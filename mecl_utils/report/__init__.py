"""Reading the results: statistics, Table IV, figures and tables, and the sentences the chapters print."""
