"""The kinematic body of the synthetic dataset: skeleton, joint-angle limits and forward kinematics.

A superset body (pelvis, spine, neck, head, clavicles, arms with hand tips and thumbs, legs with feet and
toes) is posed by per-joint Euler rotations accumulated down the chain from rest-pose bone offsets. Bone
lengths are therefore constant within a clip by construction; only the sensor noise added later changes them.

Axis convention (metres, right-handed): y up, x the subject's left, z the subject's facing direction.
Angle conventions (degrees, local frame, rotation ``Ry @ Rx @ Rz``): +x tips a downward bone backwards (raising
an arm forward or flexing a hip is negative, a knee bend positive) and an upward bone forwards (a bow is
positive on the torso); +z swings a downward bone towards +x (left arm abduction positive, right negative); +y
turns towards the subject's left (the root's y is the body's yaw).
"""

from __future__ import annotations

import numpy as np

# (name, parent, rest offset from the parent in metres, bone group for the subject's length factors).
_LEFT_AND_CENTRE = (
    ("pelvis", None, (0.0, 0.0, 0.0), None),
    ("torso", "pelvis", (0.0, 0.0, 0.0), None),  # virtual joint: bends the whole trunk about the pelvis
    ("lower_back", "torso", (0.0, 0.10, -0.01), "spine"),
    ("upper_back", "lower_back", (0.0, 0.15, -0.01), "spine"),
    ("thorax", "upper_back", (0.0, 0.20, 0.0), "spine"),
    ("cervical", "thorax", (0.0, 0.0, 0.0), None),  # virtual joint: turns neck and head about the neck's base
    ("neck", "cervical", (0.0, 0.10, 0.01), "neck"),
    ("head", "neck", (0.0, 0.12, 0.02), "neck"),
    ("l_clavicle", "thorax", (0.05, -0.01, 0.0), "clavicle"),
    ("l_shoulder", "l_clavicle", (0.14, -0.02, 0.0), "clavicle"),
    ("l_elbow", "l_shoulder", (0.0, -0.28, 0.0), "upper_arm"),
    ("l_wrist", "l_elbow", (0.0, -0.25, 0.0), "forearm"),
    ("l_hand", "l_wrist", (0.0, -0.08, 0.0), "hand"),
    ("l_handtip", "l_hand", (0.0, -0.07, 0.0), "hand"),
    ("l_thumb", "l_hand", (-0.01, -0.03, 0.04), "hand"),
    ("l_hip", "pelvis", (0.09, -0.06, 0.0), "hip"),
    ("l_knee", "l_hip", (0.0, -0.42, 0.0), "thigh"),
    ("l_ankle", "l_knee", (0.0, -0.40, -0.01), "shin"),
    ("l_foot", "l_ankle", (0.0, -0.05, 0.11), "foot"),
    ("l_toes", "l_foot", (0.0, -0.01, 0.05), "foot"),
)
BODY = _LEFT_AND_CENTRE + tuple(  # the right side mirrors the left one (x -> -x)
    ("r_" + n[2:], "r_" + q[2:] if q.startswith("l_") else q, (-o[0], o[1], o[2]), g)
    for n, q, o, g in _LEFT_AND_CENTRE if n.startswith("l_")
)
JOINTS: tuple[str, ...] = tuple(b[0] for b in BODY)
INDEX = {n: i for i, n in enumerate(JOINTS)}
PARENT = np.array([INDEX[p] if p is not None else -1 for _, p, _, _ in BODY])
OFFSET = np.array([b[2] for b in BODY], dtype=np.float64)
_GROUPS = sorted({b[3] for b in BODY if b[3] is not None})
_GROUP_OF = [(_GROUPS.index(b[3]) if b[3] is not None else -1) for b in BODY]
_SWAP = {"l_": "r_", "r_": "l_"}
MIRROR = np.array([INDEX[_SWAP[n[:2]] + n[2:]] if n[:2] in _SWAP else i for i, n in enumerate(JOINTS)])
ANKLES = [INDEX["l_ankle"], INDEX["r_ankle"]]
# Joints that never rotate, so that every bone of both file orders keeps its length (NTU's shoulder hangs off
# the thorax through the clavicle, HDM05's head off the thorax through the neck).
RIGID = ("lower_back", "neck", "l_clavicle", "r_clavicle")

# Joint-angle limits (degrees; (low, high) for x, y, z) of the centre and left joints, roughly the human range
# of motion; the right side mirrors them (y and z negate). The root (pelvis) is the body's global orientation.
_LIMITS_LEFT = {
    "pelvis": ((-100, 100), (-400, 400), (-400, 400)),
    "torso": ((-30, 95), (-60, 60), (-40, 40)),
    "upper_back": ((-20, 45), (-30, 30), (-20, 20)),
    "thorax": ((-20, 45), (-40, 40), (-20, 20)),
    "cervical": ((-50, 60), (-80, 80), (-40, 40)),
    "l_shoulder": ((-180, 60), (-90, 90), (-45, 180)),
    "l_elbow": ((-155, 0), (-90, 90), (-15, 15)),
    "l_wrist": ((-80, 80), (-80, 80), (-60, 60)),
    "l_hand": ((-60, 60), (-20, 20), (-20, 20)),
    "l_hip": ((-125, 40), (-45, 45), (-30, 70)),
    "l_knee": ((0, 150), (-10, 10), (-10, 10)),
    "l_ankle": ((-50, 50), (-30, 30), (-35, 35)),
    "l_foot": ((-40, 40), (-10, 10), (-10, 10)),
}


def _limit_table() -> np.ndarray:
    """(J, 3, 2) low/high angle per joint and axis; rigid and end joints are fixed at 0."""
    table = np.zeros((len(JOINTS), 3, 2))
    for name, lim in _LIMITS_LEFT.items():
        table[INDEX[name]] = lim
        if name.startswith("l_"):
            right = np.array(lim, dtype=np.float64)
            right[1:] = -right[1:, ::-1]  # y and z negate: (lo, hi) -> (-hi, -lo)
            table[INDEX["r_" + name[2:]]] = right
    return table


LIMITS = _limit_table()


def rotation(euler_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices ``Ry(y) @ Rx(x) @ Rz(z)`` for Euler angles (..., 3) = (x, y, z) in degrees."""
    euler = np.deg2rad(euler_deg)
    cx, cy, cz = np.moveaxis(np.cos(euler), -1, 0)
    sx, sy, sz = np.moveaxis(np.sin(euler), -1, 0)
    o, z = np.ones_like(cx), np.zeros_like(cx)
    rx = np.stack([o, z, z, z, cx, -sx, z, sx, cx], -1).reshape(*cx.shape, 3, 3)
    ry = np.stack([cy, z, sy, z, o, z, -sy, z, cy], -1).reshape(*cx.shape, 3, 3)
    rz = np.stack([cz, -sz, z, sz, cz, z, z, z, o], -1).reshape(*cx.shape, 3, 3)
    return ry @ rx @ rz


def forward_kinematics(offsets: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Joint positions (T, J, 3) with the pelvis at the origin; the rotation of joint j turns its child bones."""
    rot = rotation(angles_deg)
    glob = np.empty_like(rot)
    pos = np.zeros(angles_deg.shape[:2] + (3,))
    for j, p in enumerate(PARENT):  # BODY lists every parent before its children
        if p < 0:
            glob[:, j] = rot[:, j]
            continue
        pos[:, j] = pos[:, p] + glob[:, p] @ offsets[j]
        glob[:, j] = glob[:, p] @ rot[:, j]
    return pos


def clip_to_limits(angles_deg: np.ndarray) -> np.ndarray:
    """Angles (T, J, 3) clipped into ``LIMITS``; rigid joints set to 0."""
    return np.clip(angles_deg, LIMITS[..., 0], LIMITS[..., 1])


def subject_offsets(rng: np.random.Generator) -> np.ndarray:
    """Rest-pose offsets with a global size factor and left/right symmetric per-bone-group factors (~±10 %)."""
    groups = rng.uniform(0.95, 1.05, size=len(_GROUPS))
    scale = rng.uniform(0.92, 1.08) * np.array([groups[g] if g >= 0 else 1.0 for g in _GROUP_OF])
    return OFFSET * scale[:, None]


def mirror_angles(angles_deg: np.ndarray) -> np.ndarray:
    """The left/right mirror image of a pose sequence (T, J, 3): sides swap, y and z rotations negate."""
    return angles_deg[:, MIRROR] * np.array([1.0, -1.0, -1.0])
