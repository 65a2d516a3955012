"""Commands that work on the store without serving it: `export`, `import`, `sync`.

Each module adds its sub-command to the parser (`add_parser`) and runs it (`run`), with
the configuration `mirror/__main__.py` loaded; `__main__` only dispatches. Errors are one
line on stderr and a non-zero exit status, never a traceback.
"""
