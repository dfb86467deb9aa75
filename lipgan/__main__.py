from lipgan.cli import main

main()
