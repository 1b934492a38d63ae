from esmigrate.cli import main

# Like the console script's wrapper: an exit status returned by a verb (validate, dev-server
# status) becomes the process's.
raise SystemExit(main())
