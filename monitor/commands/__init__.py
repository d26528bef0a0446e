"""Command groups of the command line, each with ``register(subparsers)``.

``cli`` registers them; like ``cli``, a command module may import the stages, and
nothing but ``cli`` (and tests) imports a command module.
"""
