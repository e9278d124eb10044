from estm_cli.app import main

main()
