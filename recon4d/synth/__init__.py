"""Synthetic 4D scenes with full ground truth (DESIGN §9), rendered by Open3D ray casting.

- :mod:`~recon4d.synth.scene`: ``SynthConfig``, ``generate_scene``, ``write_synthetic``;
- :mod:`~recon4d.synth.bodies`: object meshes, categories and their motion;
- :mod:`~recon4d.synth.looks`: textures and colours.
"""
