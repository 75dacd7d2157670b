"""HyperLDM engine: diverse hyperspectral cubes from georeferenced RGB (Liu et al., TGRS 2023).

For notebooks: ``from hyperldm_engine import synthesize, diversity, read_cube`` (``hyperldm_engine.api``;
imported on first use, so that ``import hyperldm_engine`` stays light).
"""

__version__ = "0.1.0"

_API = ("synthesize", "diversity", "read_cube", "Cube")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from hyperldm_engine import api

        return getattr(api, name)
    raise AttributeError(f"module 'hyperldm_engine' has no attribute {name!r}")
