"""HyperLDM engine: diverse hyperspectral cubes from georeferenced RGB (Liu et al., TGRS 2023)."""

__version__ = "0.1.0"
