#!/usr/bin/env python3
"""Summarises one headless blr-studio run of scripts/device_studio.sh from the state files it dumped.

    studio_device_summary.py RUN_DIR [CLASSIFY_DIR]

Prints: GL vendor/renderer/version, the backend, whether CUDA-GL interop was active (with its reason and
how many images went through it), the UI frame rate while generating (target >= 30 frames/s), where a UI
frame's time went, the generation step times, PSNR of the comparison, classification, and every warning
or error message the app showed. Reads the newest state file that exists, so a run that stopped early still
reports what it had. Standard library only (runs with any python3).
"""
import json
import os
import sys

STATES = ["state.json", "state_generating.json", "state_round1.json", "state_loaded.json"]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(x, digits=1):
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) else str(x)


def summarise_run(run_dir):
    lines = []
    state, name = None, None
    for n in STATES:
        state = load(os.path.join(run_dir, n))
        if state is not None:
            name = n
            break
    if state is None:
        return [f"  no state file in {run_dir} (the app did not get far enough to dump one)"], None
    b = state.get("backend", {})
    lines.append(f"  state file          {name}")
    lines.append(f"  GL vendor           {b.get('gl_vendor')}")
    lines.append(f"  GL renderer         {b.get('gl_renderer')}")
    lines.append(f"  GL version          {b.get('gl_version')}")
    lines.append(f"  compute backend     {'GPU' if b.get('gpu') else 'CPU'}: {b.get('device')} ({b.get('dtype')}) {b.get('reason') or ''}")
    uploads = b.get("interop_uploads") or 0
    if b.get("interop") and uploads > 0:
        verdict = f"USED: {uploads} image(s) copied device-to-device into GL textures, no failure"
    elif b.get("interop"):
        verdict = "enabled but no image went through it (only single images and comparisons use it)"
    elif uploads > 0:
        verdict = f"used for {uploads} image(s), then turned off: {b.get('interop_reason')}"
    else:
        verdict = f"not used: {b.get('interop_reason')}"
    lines.append(f"  CUDA-GL interop     {verdict}")
    ui = state.get("ui", {})
    wg = ui.get("while_generating", {})
    fps = wg.get("fps")
    verdict = "" if not isinstance(fps, (int, float)) or not wg.get("frames") else (
        "  (>= 30: OK)" if fps >= 30 else "  (BELOW the 30 frames/s target)")
    lines.append(f"  UI while generating {fmt(fps)} frames/s over {fmt(wg.get('seconds'))} s "
                 f"({wg.get('frames')} frames, worst {fmt(wg.get('worst_frame_ms'))} ms){verdict}")
    lines.append(f"  UI frame (last 300) mean {fmt(ui.get('mean_ms'))} ms, p95 {fmt(ui.get('p95_ms'))} ms; "
                 f"build {fmt(ui.get('build_ms_mean'), 2)} ms, render+swap {fmt(ui.get('render_ms_mean'), 2)} ms, "
                 f"UI thread CPU {fmt(ui.get('thread_cpu_ms_mean'), 2)} ms")
    g = state.get("generation", {})
    lines.append(f"  generation          {g.get('state')} (run {g.get('run')}) {g.get('message') or ''}")
    for o in g.get("outputs", []):
        img = o.get("image", {})
        lines.append(f"    {o.get('mode')}: {o.get('steps_done')} steps, median {fmt(o.get('median_step_ms'), 3)} ms/step, "
                     f"sampling {fmt(o.get('sampling_ms'))} ms, graphs {o.get('graphs')}, device image {o.get('device_image')}, "
                     f"{img.get('count')}x{img.get('height')}x{img.get('width')}")
    if g.get("psnr") is not None:
        lines.append(f"    PSNR dense vs BLR {fmt(g.get('psnr'), 2)} dB, max |diff| {g.get('max_abs_diff')}")
    for m in state.get("models", []):
        lines.append(f"  model {m.get('id')}: {m.get('kind')} {m.get('name')} [{m.get('mode')}] "
                     f"{m.get('params')} params, loaded in {fmt(m.get('load_seconds'), 2)} s")
    sh = state.get("shaders", {})
    lines.append(f"  shaders             {'ok' if sh.get('ok') else 'ERRORS: ' + '; '.join(sh.get('errors', []))} ({sh.get('dir')})")
    msgs = [m for m in state.get("messages", []) if m.get("level") in ("warning", "error")]
    for m in msgs:
        lines.append(f"  {m.get('level'):8s}            {m.get('text')}")
    return lines, state


def summarise_classify(cls_dir):
    state = load(os.path.join(cls_dir, "state_classify.json"))
    if state is None:
        return [f"  no state_classify.json in {cls_dir}"]
    c = state.get("classify", {})
    lines = [f"  classify            {c.get('state')}: {c.get('classified')} frames, {fmt(c.get('fps'))} frames/s, "
             f"message: {c.get('message') or '-'}"]
    for m in c.get("models", []):
        lines.append(f"    {m.get('variant')}: network {fmt(m.get('mean_network_ms'), 3)} ms, total {fmt(m.get('mean_total_ms'), 3)} ms")
    for m in state.get("messages", []):
        if m.get("level") in ("warning", "error"):
            lines.append(f"  {m.get('level'):8s}            {m.get('text')}")
    return lines


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    lines, _ = summarise_run(sys.argv[1])
    print("\n".join(lines))
    if len(sys.argv) > 2:
        print("\n".join(summarise_classify(sys.argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
