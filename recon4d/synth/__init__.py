"""Synthetic 4D scenes with full ground truth (DESIGN §9), rendered by Open3D ray casting.

- :mod:`~recon4d.synth.scene`: ``SynthConfig``, ``generate_scene``, ``write_synthetic``;
- :mod:`~recon4d.synth.cameras`: the camera kinds (static, pan, orbit, walk, follow);
- :mod:`~recon4d.synth.bodies`: object and prop meshes, categories;
- :mod:`~recon4d.synth.paths`: how objects of plain scenes move;
- :mod:`~recon4d.synth.motion`: how objects of footage-like scenes move (stops, crossings, groups);
- :mod:`~recon4d.synth.layout`: props that objects pass behind;
- :mod:`~recon4d.synth.looks`: textures and colours.
"""
