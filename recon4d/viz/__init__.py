"""Pictures of scenes and questions (may use the QA compiler; nothing below imports this).

- :mod:`~recon4d.viz.viewer`: Open3D geometries and the interactive viewer;
- :mod:`~recon4d.viz.offscreen` + :mod:`~recon4d.viz.render_worker`: headless PNG renders in a
  separate worker process;
- :mod:`~recon4d.viz.plots`: matplotlib figures in an observer's FLU frame;
- :mod:`~recon4d.viz.explain`: why a compiled question has its answer;
- :mod:`~recon4d.viz.report`: the static HTML report.
"""
