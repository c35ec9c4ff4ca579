from cxslack.cli.app import main

main()
