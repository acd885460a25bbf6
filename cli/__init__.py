"""The `recon4d` command line: thin click shells over library functions."""
