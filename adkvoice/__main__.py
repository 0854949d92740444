from adkvoice.cli import main

main()
