"""The cluster-description readers that ship with core, one module per platform.

Each module holds one platform's variable names and its ``READER``, a
:class:`steplift.cluster.ClusterReader`, registered in core's ``steplift.cluster_readers``
entry-point group (the job image may have nothing but core, so these stay here). A platform
of another distribution registers its reader from its own ``pyproject.toml``::

    [project.entry-points."steplift.cluster_readers"]
    mycloud = "mycloud_steplift.cluster:READER"

Standard library only, like :mod:`steplift.cluster`: these run in every job.
"""
