"""RGB consistency for one scene: which correction ``--rgb-correction`` means for this input, and
the RGB the cubes are projected onto (the input as read, or on top-of-atmosphere input its estimated
surface RGB). Shared by ``synthesize`` and ``diversity``, so that the diversity report measures the
cubes that synthesize writes."""

from __future__ import annotations

from typing import Any

from hyperldm_engine.errors import InputError
from hyperldm_engine.progress import report_info, report_warning
from hyperldm_engine.spectral.consistency import choose_rgb_correction


def planned_rgb_correction(job: Any, tags: dict[str, str], model: dict[str, Any]) -> tuple[str, bool]:
    """``job.rgb_correction`` resolved for an input with these raster ``tags`` (``auto``: by its radiometry,
    from ``job.harmonise`` or the ``radiometry`` tag), and whether the input is top-of-atmosphere."""
    toa = "toa" in (job.harmonise, str(tags.get("radiometry", "")).lower())
    anchored = model.get("correction_anchor") is not None
    anchored_toa = model.get("correction_anchor_toa") is not None
    return choose_rgb_correction(job.rgb_correction, "toa" if toa else "surface", anchored, anchored_toa), toa


def haze_left_to_anchor(job: Any, tags: dict[str, str], model: dict[str, Any]) -> bool:
    """Whether a top-of-atmosphere input's cubes are centred on the bundle's TOA anchor (``anchored`` with a
    TOA anchor): then the model input keeps its haze (``simulate.harmonise.choose_harmonisation``'s
    ``keep_haze``), as the anchor and its fusion gain were measured on hazy RGB. False for jobs without an
    RGB correction."""
    if not hasattr(job, "rgb_correction"):
        return False
    correction, toa = planned_rgb_correction(job, tags, model)
    return toa and correction == "anchored" and model.get("correction_anchor_toa") is not None


def resolve_rgb_correction(job: Any, plan: Any, model: dict[str, Any], progress_mode: str) -> tuple[str, bool]:
    """``job.rgb_correction`` resolved for this input (``auto``: by its radiometry), said on the info
    line, with a warning when a correction whose prior has not seen top-of-atmosphere scenes meets TOA
    input; and whether the input is TOA."""
    correction, toa = planned_rgb_correction(job, plan.reader.ds.tags(), model)
    anchored = model.get("correction_anchor") is not None
    anchored_toa = model.get("correction_anchor_toa") is not None
    if correction == "anchored" and not anchored:
        raise InputError(f"{job.model or 'the default model'}: --rgb-correction anchored needs a bundle with a "
                         "measured regression anchor (scripts/measure_error_covariance.py); use ensemble")
    if not plan.sensor.consistency:
        return correction, toa
    how = {"minimum": "the smallest change (visible bands only)",
           "spectral": f"each cube weighted by {model['correction_prior']}",
           "ensemble": f"the samples' mean weighted by {model['correction_prior']}, their spread by the "
                       "smallest change",
           "anchored": f"the samples' mean fused with the bundle's anchor ({anchor_in_use(job, model, toa)}), "
                       "their spread by the smallest change"}[correction]
    radiometry = "top-of-atmosphere" if toa else "surface reflectance"
    said = f" (auto: {radiometry} input)" if job.rgb_correction == "auto" else ""
    report_info(f"RGB correction {correction}{said}: {how}", progress_mode)
    if toa and correction != "minimum" and not (correction == "anchored" and anchored_toa):
        report_warning(f"{job.input}: --rgb-correction {correction} assumes surface reflectance; on this "
                       "top-of-atmosphere input prefer --rgb-correction auto with a bundle that has a TOA anchor "
                       "(the default model: one sample's NDVI r 0.85 on the real Landsat 8 check, against 0.73 for "
                       "minimum, spectral or ensemble; a surface-only anchor gave 0.62 with an earlier model; "
                       "docs/model-diagnosis.md), else minimum",
                       progress_mode)
    return correction, toa


def uses_mean_anchor(job: Any, model: dict[str, Any], toa: bool, correction: str) -> bool:
    """Whether a job's cubes are centred on the bundle's mean-mode anchor (``pipeline.synthesize.correction_anchor``'s
    choice): ``--mode mean`` with the anchored correction, a bundle that has one, and not TOA input corrected by a
    TOA anchor (which wins: the mean-mode anchor has seen surface scenes only)."""
    mode = getattr(getattr(job, "sampling", None), "mode", "sample")
    return (correction == "anchored" and mode == "mean" and model.get("correction_anchor_mean") is not None
            and not (toa and model.get("correction_anchor_toa") is not None))


def anchor_in_use(job: Any, model: dict[str, Any], toa: bool) -> str:
    """In words, the anchor an anchored job's cubes are centred on, from ``bundle_summary``'s descriptions: the
    TOA anchor on TOA input where there is one, the mean-mode anchor in the mean mode where there is one
    (:func:`uses_mean_anchor`), else the surface anchor."""
    if toa and model.get("correction_anchor_toa") is not None:
        return model["correction_anchor_toa"]
    if uses_mean_anchor(job, model, toa, "anchored"):
        return model["correction_anchor_mean"]
    return model["correction_anchor"]


def consistency_target(plan: Any, model: dict[str, Any], toa: bool, progress_mode: str) -> Any:
    """The map of the input RGB onto the RGB consistency target (a ``simulate.harmonise.Harmonisation``):
    on top-of-atmosphere input the input sensor's surface RGB (``surface_estimate``; the output is surface
    reflectance, which cannot carry path radiance), else None (the input RGB itself)."""
    if not (toa and plan.sensor.consistency):
        return None
    from hyperldm_engine.simulate.harmonise import surface_estimate

    target = surface_estimate(plan.sensor.name, model["wavelengths_nm"], model["fwhm_nm"])
    report_info(f"RGB consistency target: the input's surface RGB, {target.describe()}; met as far as "
                "that estimate's error allows", progress_mode)
    return target


def target_tag(target: Any) -> str:
    """``HYPERLDM_RGB_TARGET``: what the cubes reproduce through the input sensor's response."""
    if target is None:
        return "the input RGB"
    return (f"the input's surface RGB estimated from it, met as far as the estimate's error allows "
            f"(error RMSE {', '.join(f'{v:.4f}' for v in target.fit_rmse)} per channel): {target.describe()}, "
            f"matrix {target.as_list()}")


def consistency_tags(plan: Any, correction: str, target: Any) -> dict[str, str]:
    """The output tags that say how the cubes were made RGB-consistent: ``HYPERLDM_RGB_CORRECTION`` ("none"
    without consistency) and, with it, ``HYPERLDM_RGB_TARGET`` (:func:`target_tag`)."""
    if not plan.sensor.consistency:
        return {"HYPERLDM_RGB_CORRECTION": "none"}
    return {"HYPERLDM_RGB_CORRECTION": correction, "HYPERLDM_RGB_TARGET": target_tag(target)}


def target_arguments(target: Any) -> dict[str, Any]:
    """``SynthesisTileFn``'s ``rgb_target`` and ``rgb_noise`` for a target from :func:`consistency_target`."""
    if target is None:
        return {"rgb_target": None, "rgb_noise": None}
    return {"rgb_target": target.as_list(), "rgb_noise": target.error_covariance()}
