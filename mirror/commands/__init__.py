"""The command line's parts: `clientmain` (the client verbs, which need no
configuration), `servercli` (`serve`, `check-config`, `garbage-collect`), `storecli` (the
parsers and lazy dispatch of `export`, `import`, `sync`, `du`, whose modules work on the
store without serving it). Errors are one line on stderr and a non-zero exit status,
never a traceback.
"""
