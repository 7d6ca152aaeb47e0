"""`python -m worker ...` is the same as `attnlens ...` (jobs, mining, atlas builds)."""

from attnlens.cli import main

main()
