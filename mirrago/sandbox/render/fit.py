"""Fit a garment to a found body: warp, layer, shade and composite.

The torso of the garment goes to the body's torso by one affine map set by the shoulders
(width and tilt) and the hips (length, for tops); each sleeve is a strip of quads laid along
the arm's polyline (shoulder → elbow → wrist), so it bends at the elbow. Layers, back to
front: the torso, the person's own arms where they cross it, the sleeves, then the person's
head and hair, copied back untouched.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mirrago.sandbox.render import body as bodies
from mirrago.sandbox.render.garment import Garment, Sleeve

# Outer shoulder width of a garment relative to the distance between shoulder joints.
_SHOULDER_SPREAD = 1.22
# How far the shoulder seam sits above the joints, in shoulder widths.
_SHOULDER_LIFT = 0.13
# A strapped dress's straps sit this far apart, in shoulder widths.
_STRAP_SPREAD = 0.74
# A sleeve's least half-width on the body, in shoulder widths (an arm is about a third wide).
_MIN_SLEEVE_HALF_WIDTH = 0.19
# Where a strapped garment's bodice starts below the shoulder joints, in shoulder widths.
_BODICE_BELOW_SHOULDERS = 0.42
# Where a top's hem ends below the hip joints, in shoulder widths.
_HEM_BELOW_HIPS = 0.12


class Frame:
    """The body's upper frame in image pixels: `x` runs from the image-left shoulder to the
    image-right one, `y` down the body."""

    def __init__(self, body: bodies.Body) -> None:
        points = body.points
        right_first = points[bodies.RIGHT_SHOULDER][0] <= points[bodies.LEFT_SHOULDER][0]
        sides = (
            (bodies.RIGHT_SHOULDER, bodies.RIGHT_ELBOW, bodies.RIGHT_WRIST, bodies.RIGHT_HIP),
            (bodies.LEFT_SHOULDER, bodies.LEFT_ELBOW, bodies.LEFT_WRIST, bodies.LEFT_HIP),
        )
        if not right_first:
            sides = sides[::-1]
        height, width = body.mask.shape

        def seen(index: int) -> bool:
            x, y = points[index]
            return bool(body.visibility[index] > 0.5 and 0 <= x < width and 0 <= y < height)

        self.hips = points[[sides[0][3], sides[1][3]]]
        self.hips_visible = seen(sides[0][3]) and seen(sides[1][3])
        left, right = points[sides[0][0]], points[sides[1][0]]
        self.width = max(float(np.linalg.norm(right - left)), 1.0)
        self.x = (right - left) / self.width
        self.y = np.array([-self.x[1], self.x[0]])
        self.mid = (left + right) / 2
        # An arm out of the picture (a portrait) hangs down by the body, slightly out.
        arms, visible = [], []
        for (shoulder, elbow, wrist, _), out in zip(sides, (-1.0, 1.0), strict=True):
            if seen(elbow):
                arms.append(points[[shoulder, elbow, wrist]])
            else:
                start = points[shoulder]
                bend = start + self.y * 1.1 * self.width + self.x * out * 0.12 * self.width
                arms.append(np.vstack([start, bend, bend + self.y * self.width]))
            visible.append(seen(elbow) and seen(wrist))
        self.arms = tuple(arms)
        self.arms_visible = tuple(visible)


def _torso_map(garment: Garment, frame: Frame) -> np.ndarray:
    """The 2×3 affine map from garment pixels to image pixels for the garment's torso."""
    if garment.sleeves:
        scale = _SHOULDER_SPREAD * frame.width / garment.width
    else:
        scale = _STRAP_SPREAD * frame.width / garment.width
    lift = (_SHOULDER_LIFT if garment.sleeves else -_BODICE_BELOW_SHOULDERS) * frame.width
    stretch = scale
    if not garment.is_long and frame.hips_visible:
        hem_depth = float((frame.hips.mean(axis=0) - frame.mid) @ frame.y)
        wanted = hem_depth + lift + _HEM_BELOW_HIPS * frame.width
        stretch = float(
            np.clip(wanted / (garment.hem_y - garment.shoulder_y), 0.85 * scale, 1.3 * scale)
        )
    # image = mid + x·(gx − cx)·scale + y·((gy − shoulder_y)·stretch − lift)
    linear = np.column_stack([frame.x * scale, frame.y * stretch])
    offset = (
        frame.mid
        - frame.x * garment.centre_x * scale
        - frame.y * (garment.shoulder_y * stretch + lift)
    )
    return np.column_stack([linear, offset])


def _apply(matrix: np.ndarray, point: np.ndarray) -> np.ndarray:
    return matrix[:, :2] @ point + matrix[:, 2]


def _affine_layer(source: Image.Image, matrix: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """`source` (RGBA, or premultiplied RGBa: pass that when mapping one source many times)
    mapped by the 2×3 `matrix` onto a transparent canvas of `size`, as RGBA.

    Shrinks the source first when the map shrinks it a lot, so that stripes and prints do not
    alias.
    """
    if source.mode == "RGBA":  # Pillow would premultiply on every call; do it once here
        source = source.convert("RGBa")
    shrink = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if shrink < 0.8:
        factor = max(shrink * 1.25, 0.05)
        small = (max(1, round(source.width * factor)), max(1, round(source.height * factor)))
        scaled = source.resize(small, Image.Resampling.BILINEAR)
        matrix = matrix.copy()
        matrix[:, 0] *= source.width / small[0]
        matrix[:, 1] *= source.height / small[1]
        source = scaled
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    return source.transform(
        size,
        Image.Transform.AFFINE,
        tuple(inverse.ravel()),
        resample=Image.Resampling.BILINEAR,
    ).convert("RGBA")


def _triangle_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2×3 affine map taking the triangle `src` (3×2) onto `dst` (3×2)."""
    a = np.column_stack([src, np.ones(3)])
    return np.linalg.solve(a, dst).T


def _polyline_at(points: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """The point `distance` along the polyline (negative: before its start, straight back) and
    the unit direction there (averaged across a bend so that strips do not fold)."""
    segments = np.diff(points, axis=0)
    lengths = np.maximum(np.linalg.norm(segments, axis=1), 1e-6)
    units = segments / lengths[:, None]
    if distance <= 0:
        return points[0] + units[0] * distance, units[0]
    walked = 0.0
    for index, (length, unit) in enumerate(zip(lengths, units, strict=True)):
        if distance <= walked + length or index == len(lengths) - 1:
            along = distance - walked
            position = points[index] + unit * along
            # Blend directions near a joint, over a fifth of the segment on either side.
            blend = 0.2 * length
            if index + 1 < len(units) and along > length - blend:
                weight = 0.5 * (along - (length - blend)) / blend
                unit = (1 - weight) * unit + weight * units[index + 1]
            elif index > 0 and along < blend:
                weight = 0.5 * (blend - along) / blend
                unit = (1 - weight) * unit + weight * units[index - 1]
            return position, unit / max(np.linalg.norm(unit), 1e-6)
        walked += length
    return points[-1], units[-1]


def _draw_sleeve(
    layer: Image.Image,
    sleeve: Sleeve,
    arm: np.ndarray,
    torso: np.ndarray,
    scale: float,
    frame_width: float,
) -> float:
    """Draw the sleeve onto `layer`, warped along `arm` (shoulder, elbow, wrist). Returns how
    far along the arm (in pixels from the shoulder seam) it ends."""
    root = sleeve.root
    axis = (sleeve.cuff - root) / max(sleeve.length, 1e-6)
    normal = np.array([-axis[1], axis[0]])
    half_width = sleeve.half_width * 1.12
    arm_length = float(np.linalg.norm(arm[1] - arm[0]) + np.linalg.norm(arm[2] - arm[1]))
    reach = sleeve.length * scale
    if reach > 0.75 * arm_length:  # a long sleeve ends at the wrist, whatever its drawing
        reach = arm_length * 1.02
    # The sleeve runs down the arm from between its seam on the torso and the shoulder joint.
    start = (_apply(torso, root) + arm[0]) / 2
    path = np.vstack([start, arm[1], arm[2], arm[2] + (arm[2] - arm[1]) * 0.5])
    steps = (-0.25, 0.0, 0.3, 0.6, 0.85, 1.12)
    sections_src, sections_dst = [], []
    for t in steps:
        centre_src = root + axis * sleeve.length * t
        sections_src.append((centre_src - normal * half_width, centre_src + normal * half_width))
        centre_dst, direction = _polyline_at(path, reach * t)
        normal_dst = np.array([-direction[1], direction[0]])
        # A sleeve hangs closer to the arm than it lies flat in a product shot, but is always
        # a little wider than the arm it covers.
        reach_width = max(half_width * scale * 0.85, _MIN_SLEEVE_HALF_WIDTH * frame_width)
        sections_dst.append(
            (centre_dst - normal_dst * reach_width, centre_dst + normal_dst * reach_width)
        )
    # Shrink the sleeve once to about its size on the body (the triangles then only move it).
    factor = min(1.0, scale * 1.25)
    source = sleeve.image
    if factor < 0.95:
        small = (max(1, round(source.width * factor)), max(1, round(source.height * factor)))
        source = source.resize(small, Image.Resampling.BILINEAR)
        sections_src = [(a * factor, b * factor) for a, b in sections_src]
    triangles = []
    for (a0, a1), (b0, b1), (c0, c1), (d0, d1) in zip(
        sections_src[:-1], sections_src[1:], sections_dst[:-1], sections_dst[1:], strict=True
    ):
        triangles.append((np.array([a0, a1, b1]), np.array([c0, c1, d1])))
        triangles.append((np.array([a0, b1, b0]), np.array([c0, d1, d0])))
    _warp_triangles(layer, source, triangles)
    return reach


def _warp_triangles(
    layer: Image.Image, source: Image.Image, triangles: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    """Warp each (source triangle, destination triangle) of `source` (RGBA) onto `layer`, in
    one backward-mapped, bilinear pass over the destination pixels the triangles cover."""
    premultiplied = np.asarray(source.convert("RGBa"), dtype=np.float32)
    src_height, src_width = premultiplied.shape[:2]
    corners = np.vstack([dst for _, dst in triangles])
    left, top = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    right = min(int(np.ceil(corners[:, 0].max())) + 1, layer.width)
    bottom = min(int(np.ceil(corners[:, 1].max())) + 1, layer.height)
    if right <= left or bottom <= top:
        return
    # Rasterise which triangle owns each destination pixel, then map every covered pixel back
    # through its own triangle's affine map.
    owner = Image.new("L", (right - left, bottom - top), 0)
    draw = ImageDraw.Draw(owner)
    maps = np.zeros((len(triangles) + 1, 2, 3))
    for number, (src, dst) in enumerate(triangles, start=1):
        maps[number] = _triangle_affine(dst, src)
        draw.polygon([tuple(p) for p in dst - (left, top)], fill=number, outline=number)
    ys, xs = np.nonzero(np.asarray(owner))
    if len(ys) == 0:
        return
    chosen = maps[np.asarray(owner)[ys, xs]]
    px, py = xs + left + 0.5, ys + top + 0.5
    sx = chosen[:, 0, 0] * px + chosen[:, 0, 1] * py + chosen[:, 0, 2] - 0.5
    sy = chosen[:, 1, 0] * px + chosen[:, 1, 1] * py + chosen[:, 1, 2] - 0.5
    x0 = np.clip(np.floor(sx).astype(np.int64), 0, src_width - 1)
    y0 = np.clip(np.floor(sy).astype(np.int64), 0, src_height - 1)
    x1, y1 = np.minimum(x0 + 1, src_width - 1), np.minimum(y0 + 1, src_height - 1)
    fx = np.clip(sx - np.floor(sx), 0, 1)[:, None]
    fy = np.clip(sy - np.floor(sy), 0, 1)[:, None]
    outside = ((sx < -1) | (sy < -1) | (sx > src_width) | (sy > src_height))[:, None]
    sample = (
        premultiplied[y0, x0] * (1 - fx) * (1 - fy)
        + premultiplied[y0, x1] * fx * (1 - fy)
        + premultiplied[y1, x0] * (1 - fx) * fy
        + premultiplied[y1, x1] * fx * fy
    ) * ~outside
    piece = np.zeros((bottom - top, right - left, 4), dtype=np.uint8)
    piece[ys, xs] = np.clip(sample + 0.5, 0, 255).astype(np.uint8)
    warped = Image.fromarray(piece, "RGBa").convert("RGBA")
    layer.alpha_composite(warped, dest=(int(left), int(top)))


def _capsule(size: tuple[int, int], points: np.ndarray, radius: float) -> np.ndarray:
    """A float mask (0…1) of the thick polyline through `points`."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    coords = [tuple(p) for p in points]
    draw.line(coords, fill=255, width=max(1, int(2 * radius)), joint="curve")
    for x, y in coords:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(mask, dtype=np.float32) / 255.0


def _shading(canvas: Image.Image) -> np.ndarray:
    """The photo's local light as a gain around 1: fine blur over coarse blur of its
    luminance, so that folds and shadows carry over but the colour of the clothes under the
    garment (dark trousers, a white shirt) does not. Computed at a quarter size (it is
    smooth) and scaled back."""
    small = canvas.convert("L").reduce(4) if min(canvas.size) >= 64 else canvas.convert("L")
    fine = small.filter(ImageFilter.GaussianBlur(max(1.0, max(small.size) / 80)))
    coarse = small.filter(ImageFilter.GaussianBlur(max(3.0, max(small.size) / 12)))
    ratio = (np.asarray(fine, dtype=np.float32) + 8) / (np.asarray(coarse, dtype=np.float32) + 8)
    gain = np.clip(1.0 + 0.5 * (ratio - 1.0), 0.86, 1.12)
    # Scaled up as 8-bit (gain 0.86…1.12 in steps of 1/200): far faster than floats.
    coded = Image.fromarray(np.round((gain - 0.5) * 200).astype(np.uint8), "L")
    upscaled = np.asarray(coded.resize(canvas.size, Image.Resampling.BILINEAR))
    return upscaled.astype(np.float32) / 200 + 0.5


def _skin_colour(canvas: Image.Image, body: bodies.Body) -> np.ndarray | None:
    """The median skin colour inside the face box (YCbCr skin test), or None."""
    left, top, right, bottom = body.face_box()
    face = canvas.crop((max(left, 0), max(top, 0), max(right, 1), max(bottom, 1)))
    if face.width < 4 or face.height < 4:
        return None
    rgb = np.asarray(face, dtype=np.int16).reshape(-1, 3)
    ycc = np.asarray(face.convert("YCbCr"), dtype=np.int16).reshape(-1, 3)
    skin = (
        (ycc[:, 2] >= 133)
        & (ycc[:, 2] <= 180)
        & (ycc[:, 1] >= 77)
        & (ycc[:, 1] <= 130)
        & (rgb[:, 0] > rgb[:, 2])
    )
    if skin.sum() < 20:
        return None
    return np.median(rgb[skin], axis=0).astype(np.float32)


def _working_box(
    size: tuple[int, int], points: list[np.ndarray], margin: float
) -> tuple[int, int, int, int]:
    stacked = np.vstack(points)
    left, top = np.floor(stacked.min(axis=0) - margin).astype(int)
    right, bottom = np.ceil(stacked.max(axis=0) + margin).astype(int)
    return (
        int(np.clip(left, 0, size[0] - 1)),
        int(np.clip(top, 0, size[1] - 1)),
        int(np.clip(right, 1, size[0])),
        int(np.clip(bottom, 1, size[1])),
    )


def _shift(matrix: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    shifted = matrix.copy()
    shifted[:, 2] -= offset
    return shifted


def fit(
    canvas: Image.Image, backdrop: Image.Image, garment: Garment, body: bodies.Body
) -> tuple[Image.Image, np.ndarray]:
    """`canvas` (the person photo, RGB) wearing `garment`, composed over `backdrop` (the
    photo itself, or the photo with its background replaced), and the garment's opacity in
    the result per pixel (0…1: what shows of it after the arms and head in front).

    All the work happens inside the box the garment and the arms cover.
    """
    frame = Frame(body)
    torso_map = _torso_map(garment, frame)
    scale = float(np.linalg.norm(torso_map[:, 0]))
    height, width = garment.torso.height, garment.torso.width
    corners = [
        _apply(torso_map, np.array(p, dtype=float))
        for p in ((0, 0), (width, 0), (0, height), (width, height))
    ]
    box = _working_box(canvas.size, [np.array(corners), *frame.arms], 0.35 * frame.width)
    origin = (box[0], box[1])
    size = (box[2] - box[0], box[3] - box[1])
    local_map = _shift(torso_map, origin)
    arms = [arm - origin for arm in frame.arms]

    torso = _affine_layer(garment.torso, local_map, size)
    if not garment.sleeves:  # straps run over the shoulders, out of sight behind them
        _clip_above(torso, frame, origin, -0.08 * frame.width)
    sleeves = Image.new("RGBA", size, (0, 0, 0, 0))
    for sleeve, arm in zip(garment.sleeves, arms, strict=False):
        _draw_sleeve(sleeves, sleeve, arm, local_map, scale, frame.width)
    if garment.sleeves:  # nothing of a sleeve rises above the garment's shoulder line
        _clip_above(sleeves, frame, origin, -0.1 * frame.width)
    photo = canvas.crop(box)
    gain = _shading(photo)
    result = backdrop.crop(box).convert("RGBA")
    colour = _skin_colour(canvas, body)
    skin = None
    if colour is not None:
        rgb = np.asarray(photo, dtype=np.int16)
        skin = (colour, np.abs(rgb - colour.astype(np.int16)).max(axis=2).astype(np.float32))
        covered = np.maximum(np.asarray(torso.getchannel("A")), np.asarray(sleeves.getchannel("A")))
        bare = _bare_skin(photo, body, arms, frame, origin, skin, gain, covered)
        if bare is not None:
            result.alpha_composite(bare)
    piece, at = _finish(torso, gain)
    result.alpha_composite(piece, dest=at)
    coverage = np.asarray(torso.getchannel("A"), dtype=np.float32) / 255.0

    # The person's bare forearms and hands stay in front of the garment's torso.
    front = _bare_arms(photo, body, arms, frame, origin, skin) if skin else None
    if front is not None:
        result.alpha_composite(front)
        coverage = coverage * (1.0 - np.asarray(front.getchannel("A"), dtype=np.float32) / 255)
    piece, at = _finish(sleeves, gain)
    result.alpha_composite(piece, dest=at)
    sleeve_alpha = np.asarray(sleeves.getchannel("A"), dtype=np.float32) / 255.0
    coverage = sleeve_alpha + coverage * (1.0 - sleeve_alpha)

    # The head (face and hair) is copied back untouched.
    head = _head(backdrop.crop(box), body, origin)
    result.alpha_composite(head)
    coverage *= 1.0 - np.asarray(head.getchannel("A"), dtype=np.float32) / 255.0
    out = backdrop.copy()
    out.paste(result.convert("RGB"), origin)
    full = np.zeros(canvas.size[::-1], dtype=np.float32)
    full[box[1] : box[3], box[0] : box[2]] = coverage
    return out, full


def _clip_above(layer: Image.Image, frame: Frame, origin: tuple[int, int], depth: float) -> None:
    """Make the layer transparent above the line `depth` px below the shoulder joints (only
    the rows that line can cross are touched)."""
    xs = np.arange(layer.width, dtype=np.float32)[None, :] + origin[0] - frame.mid[0]
    # Row where the line crosses each column: (x, y)·frame.y = depth.
    if abs(frame.y[1]) < 1e-3:
        return
    line = (depth - xs * frame.y[0]) / frame.y[1] + frame.mid[1] - origin[1]
    last = int(np.clip(np.ceil(line.max()) + 3, 0, layer.height))
    if last <= 0:
        return
    ys = np.arange(last, dtype=np.float32)[:, None]
    keep = np.clip((ys - line) * frame.y[1] / 2.0, 0, 1)
    alpha = np.asarray(layer.getchannel("A")).copy()
    alpha[:last] = (alpha[:last] * keep).astype(np.uint8)
    layer.putalpha(Image.fromarray(alpha, "L"))


def _extent(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and columns that hold anything of `mask`."""
    rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if len(rows) == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)


def _bare_skin(
    photo: Image.Image,
    body: bodies.Body,
    arms: list[np.ndarray],
    frame: Frame,
    origin: tuple[int, int],
    skin: tuple[np.ndarray, np.ndarray],
    gain: np.ndarray,
    covered: np.ndarray,
) -> Image.Image | None:
    """Skin painted over the person's own clothes where the new garment leaves the shoulders
    and arms bare (a strapped dress over a T-shirt, short sleeves over long ones): the
    person's own sleeves would otherwise show. Only clothing-coloured pixels of the person,
    on the shoulders and arms, outside the new garment, are painted; shading is kept.

    `skin` is the skin colour and each pixel's distance from it."""
    if not all(frame.arms_visible):
        return None  # a portrait: the arms and their sleeves are out of the picture
    colour, distance = skin
    radius = 0.17 * frame.width
    chest = np.vstack([arms[0][0], arms[1][0]]) + frame.y * 0.12 * frame.width
    zone = _capsule(photo.size, chest, 0.28 * frame.width)
    for arm in arms:
        zone = np.maximum(zone, _capsule(photo.size, arm, radius))
    zone *= covered < 128
    extent = _extent(zone > 0)
    if extent is None:
        return None
    rows, columns = extent
    left, top = origin
    person = body.mask[top : top + photo.height, left : left + photo.width][extent]
    not_skin = np.clip((distance[extent] - 28.0) / 20.0, 0.0, 1.0)
    # Below the chin only: the head is never painted.
    _, _, _, chin = _Shifted(body, origin).face_box()
    ys = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None]
    below_chin = np.clip((ys - chin - 0.1 * frame.width) / 4.0, 0, 1)
    alpha = zone[extent] * not_skin * np.clip(person * 1.6 - 0.3, 0, 1) * below_chin
    alpha *= 1.0 - covered[extent].astype(np.float32) / 255.0
    if alpha.max() < 0.05:
        return None
    paint = colour[None, None, :] * gain[extent][..., None]
    piece = Image.fromarray(
        np.dstack([np.clip(paint, 0, 255), alpha * 255]).astype(np.uint8), "RGBA"
    )
    piece.putalpha(piece.getchannel("A").filter(ImageFilter.GaussianBlur(1.0)))
    image = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    image.paste(piece, (columns.start, rows.start))
    return image


def _bare_arms(
    photo: Image.Image,
    body: bodies.Body,
    arms: list[np.ndarray],
    frame: Frame,
    origin: tuple[int, int],
    skin: tuple[np.ndarray, np.ndarray],
) -> Image.Image | None:
    """The person's skin-coloured forearms and hands (from the photo) as an RGBA layer, or
    None when the arms are not seen."""
    radius = 0.15 * frame.width
    capsules = np.zeros(photo.size[::-1], dtype=np.float32)
    for arm, visible in zip(arms, frame.arms_visible, strict=True):
        if not visible:
            continue
        hand = arm[2] + (arm[2] - arm[1]) * 0.35
        capsules = np.maximum(
            capsules, _capsule(photo.size, np.vstack([arm[1], arm[2], hand]), radius)
        )
    extent = _extent(capsules > 0)
    if extent is None:
        return None
    skin_like = np.clip((42.0 - skin[1][extent]) / 14.0, 0.0, 1.0)
    left, top = origin
    person = body.mask[top : top + photo.height, left : left + photo.width][extent]
    alpha = capsules[extent] * skin_like * np.clip(person * 1.5 - 0.25, 0, 1) * 255
    rows, columns = extent
    alpha_image = Image.new("L", photo.size, 0)
    alpha_image.paste(
        Image.fromarray(alpha.astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(0.7)),
        (columns.start, rows.start),
    )
    layer = photo.convert("RGBA")
    layer.putalpha(alpha_image)
    return layer


class _Shifted:
    """A body's face box moved into a crop's coordinates."""

    def __init__(self, body: bodies.Body, origin: tuple[int, int]) -> None:
        self._box = body.face_box()
        self._origin = origin

    def face_box(self) -> tuple[int, int, int, int]:
        left, top, right, bottom = self._box
        x, y = self._origin
        return left - x, top - y, right - x, bottom - y


def _head(backdrop: Image.Image, body: bodies.Body, origin: tuple[int, int]) -> Image.Image:
    """The head of the person (an ellipse around the face and everything of the person
    above the chin) as an RGBA layer taken from `backdrop`."""
    left, top, right, bottom = _Shifted(body, origin).face_box()
    face_width = right - left
    size = backdrop.size
    head = Image.new("L", size, 0)
    ImageDraw.Draw(head).ellipse(
        (left - 0.25 * face_width, top - 0.6 * face_width, right + 0.25 * face_width, bottom),
        fill=255,
    )
    head_mask = np.asarray(head, dtype=np.float32) / 255.0
    head_mask[body.face_mask(size, origin)] = 1.0
    x, y = origin
    person = body.mask[y : y + size[1], x : x + size[0]] > 0.5
    rows = np.arange(size[1], dtype=np.float32)[:, None]
    above_chin = np.clip((bottom - rows) / 3.0, 0, 1) * person
    head_mask = np.maximum(head_mask, above_chin)
    layer = backdrop.convert("RGBA")
    layer.putalpha(Image.fromarray((head_mask * 255).astype(np.uint8), "L"))
    return layer


def _finish(layer: Image.Image, gain: np.ndarray) -> tuple[Image.Image, tuple[int, int]]:
    """Shade the layer with the photo's light and feather its edge; returns the piece that
    holds anything (cropped) and where it goes."""
    box = layer.getchannel("A").getbbox()
    if box is None:
        return Image.new("RGBA", (1, 1), (0, 0, 0, 0)), (0, 0)
    left, top, right, bottom = box
    left, top = max(left - 2, 0), max(top - 2, 0)
    right, bottom = min(right + 2, layer.width), min(bottom + 2, layer.height)
    piece = layer.crop((left, top, right, bottom))
    rgb = np.asarray(piece.convert("RGB"), dtype=np.float32)
    rgb *= gain[top:bottom, left:right, None]
    shaded = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").convert("RGBA")
    shaded.putalpha(piece.getchannel("A").filter(ImageFilter.GaussianBlur(0.8)))
    return shaded, (left, top)
