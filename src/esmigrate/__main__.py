from esmigrate.cli import main

main()
