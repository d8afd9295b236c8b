"""The code package and the requirements: what a job needs besides its image.

Launcher side: :mod:`.discovery` finds the step's project and its files, :mod:`.filters`
keeps what may travel (never secrets, ``.git/`` or virtual environments), :mod:`.archive`
packs it deterministically under its SHA-256, :mod:`.shipping` uploads it once,
:mod:`.requirements` turns a ``requirements`` option into text, and :mod:`.functions` pickles
functions from ``__main__`` or a notebook by value.

Job side (Python 3.10 to 3.13, standard library only): :mod:`.unpack` verifies and unpacks a
package into a cache folder keyed by its digest, :mod:`.install` installs requirements with
pip into a folder keyed by theirs. Nothing here is imported by ``import steplift``.
"""
