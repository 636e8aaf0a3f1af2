"""The plumbing Snakemake needs: the config (strict YAML, schema and cross-checks, the run
grid), the code inputs of each rule, how a rule's script runs and logs, and the cluster's
resources. The rules, the scripts and the jobs use it.

May import the basics, models and data (to check a config against them); no layer that
computes results imports it."""
