"""One module per `pycontainer` verb, each with run(parsed, log) -> exit status."""
