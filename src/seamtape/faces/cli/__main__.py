from seamtape.faces.cli import main

main()
