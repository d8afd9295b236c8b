"""steplift's benchmarks: ``python -m benchmarks.run [--quick]`` from the repository root.

The modules import only installed packages (steplift and its providers, with their emulator
extras) and each other, relatively; every one that runs alone is a ``python -m
benchmarks.<module>`` entry (the parent runs its measurements that way, one child each).
"""
