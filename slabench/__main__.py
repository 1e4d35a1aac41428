from slabench.cli import main

main()
