"""The stage layer: one module per rule family of the workflow, each function "tables in, files out".

A stage reads the workflow's tables (batch tables, manifests, scores), asks :class:`spnrestore.paths.DrivePaths`
where every file lives, calls the core (:mod:`spnrestore.spn`, :mod:`spnrestore.originals`,
:mod:`spnrestore.jpeg`, :mod:`spnrestore.dataset`, :mod:`spnrestore.model`) and writes its outputs atomically.
The workflow's scripts are one call into a stage; the core never imports a stage.

==================  =====================================================
module              rules
==================  =====================================================
``roles``           (planning) the role of every original, in ``common.smk``
``develop``         ``develop``
``manifest``        ``manifest``
``spn``             ``residual``, ``fingerprint``, ``score``
``identification``  ``identification``
``shards``          ``shards``
``train``           ``train``
``restore``         ``restore``
``evaluation``      ``evaluation``
``results``         ``results``
``plots``           ``plots``
==================  =====================================================
"""
