"""The `pycontainer` command line: runc's verbs as data (verbs), the lean parser, the click
application for help and usage errors, the entry point (main) and one module per verb (commands/)."""
