"""Entry points of the stage scripts: each `main()` parses flags and calls the library."""
