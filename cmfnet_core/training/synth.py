"""Degradation synthesis for training CMFNet (numpy + OpenCV only, no torch).

Every function takes a clean RGB image (float32 in [0, 1], H x W x 3) and a
``numpy.random.Generator`` and returns ``(degraded, clean)`` float32 arrays in
[0, 1] of the same size.  The same generator state always gives the same pair.

* ``blur``:      camera shake (random-walk trajectories) or defocus (disc),
                 applied in linear light, plus mild noise and JPEG.
* ``video_blur``: GoPro-style blur: the average of 7-13 frames along a smooth
                 camera path (homographies: translation, rotation about a
                 random centre, zoom, a little perspective), sometimes with an
                 object that moves on its own; the middle frame is the target.
* ``haze``:      atmospheric scattering I = J t + A (1 - t), t = exp(-beta d),
                 with a smooth random depth map that grows toward the top,
                 a brightness/sky term, varied beta and airlight colour.
* ``raindrop``:  adherent drops on glass: soft-edged blobs that show a
                 blurred, refracted (flipped, magnified) view of the scene,
                 with a dark lower rim and a bright highlight; optional streaks.

``make_pair(task, image, patch, rng)`` crops/augments a training patch from a
clean photo and degrades it the right way for the task.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..weights import TASKS  # one list of tasks: the engine's

# Share of deblur pairs made by video_blur (the rest: sharp 5 %, kernels).
DEBLUR_VIDEO_SHARE = 0.65
# Share of raindrop pairs that are a drizzle: hundreds of small drops in focus (a few
# pixels across, sharp dark rims and bright highlights), as in the three real samples,
# which the larger drops below did not resemble.
DRIZZLE_SHARE = 0.4
# Share of the other raindrop pairs whose drops are far out of focus: soft, low-contrast
# blobs with faint rims and highlights, as in the real dev pair (the lens focused on the scene).
DEFOCUSED_DROP_SHARE = 0.5


# ---------------------------------------------------------------- helpers
def srgb_to_linear(x):
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x):
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def add_noise(img, rng, max_sigma=0.012):
    """Gaussian + signal-dependent (shot-like) noise, mild."""
    s = rng.uniform(0.0, max_sigma)
    p = rng.uniform(0.0, max_sigma)
    n = rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img + n * np.sqrt(s * s + p * p * np.clip(img, 0, 1)), 0, 1).astype(np.float32)


def jpeg(img, rng, qmin=60, qmax=95):
    q = int(rng.integers(qmin, qmax + 1))
    u8 = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return out.astype(np.float32) / 255.0


def smooth_field(h, w, rng, cells=4):
    """Smooth random field in [0, 1] (bicubic-upsampled coarse noise)."""
    g = rng.random((cells + 1, cells + 1)).astype(np.float32)
    f = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    f -= f.min()
    m = f.max()
    return f / m if m > 0 else f


# ---------------------------------------------------------------- blur
def motion_kernel(rng, size=None):
    """Camera-shake kernel: a random walk with inertia, splatted sub-pixel."""
    length = rng.uniform(3.0, 28.0)
    n = 64
    angle = rng.uniform(0, 2 * np.pi)
    curv = rng.uniform(0.0, 0.35)          # how much the direction wanders
    jitter = rng.uniform(0.0, 0.5)         # small shaky steps
    pts = np.zeros((n, 2), np.float64)
    v = np.array([np.cos(angle), np.sin(angle)])
    for i in range(1, n):
        turn = rng.normal(0, curv)
        c, s = np.cos(turn), np.sin(turn)
        v = np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])
        pts[i] = pts[i - 1] + v + rng.normal(0, jitter, 2)
    # scale path to the wanted length
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()
    pts *= length / max(seg, 1e-6)
    pts -= pts.mean(axis=0)
    # non-uniform speed: exposure weights along the path
    wts = np.clip(1.0 + rng.normal(0, 0.5) * np.linspace(-1, 1, n), 0.2, None)
    ext = int(np.ceil(np.abs(pts).max())) + 2
    k = size or (2 * ext + 1)
    c0 = k // 2
    ker = np.zeros((k, k), np.float64)
    for (x, y), wt in zip(pts, wts):
        x += c0
        y += c0
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                yy, xx = y0 + dy, x0 + dx
                if 0 <= yy < k and 0 <= xx < k:
                    ker[yy, xx] += wt * wx * wy
    ker /= ker.sum()
    return ker.astype(np.float32)


def disc_kernel(radius):
    r = float(radius)
    k = int(np.ceil(r)) * 2 + 3
    c = k // 2
    yy, xx = np.mgrid[:k, :k].astype(np.float32) - c
    # anti-aliased disc by supersampling
    ss = 4
    acc = np.zeros((k, k), np.float32)
    for i in range(ss):
        for j in range(ss):
            d = np.hypot(xx + (i + 0.5) / ss - 0.5, yy + (j + 0.5) / ss - 0.5)
            acc += (d <= r).astype(np.float32)
    acc /= acc.sum()
    return acc


def random_blur_kernel(rng):
    u = rng.random()
    if u < 0.70:
        return motion_kernel(rng)
    if u < 0.90:
        return disc_kernel(rng.uniform(1.0, 6.0))
    # shake + slight defocus
    k = motion_kernel(rng)
    d = disc_kernel(rng.uniform(0.8, 2.5))
    return cv2.filter2D(np.pad(k, d.shape[0] // 2), -1, d[::-1, ::-1], borderType=cv2.BORDER_CONSTANT)


def blur(img, rng, kernel=None):
    """Blur a clean image (H x W x 3, [0, 1]); the borders are reflected."""
    if kernel is None:
        kernel = random_blur_kernel(rng)
    lin = srgb_to_linear(img)
    # slight highlight boost so saturated lights smear like real exposures
    if rng.random() < 0.3:
        lin = lin * (1.0 + 1.5 * (lin > 0.95))
    b = cv2.filter2D(lin, -1, kernel[::-1, ::-1], borderType=cv2.BORDER_REFLECT)
    out = linear_to_srgb(b)
    out = add_noise(out, rng, 0.01)
    if rng.random() < 0.6:
        out = jpeg(out, rng, 70, 95)
    return out, img


def camera_path(h, w, rng, frames):
    """One homography per frame along a smooth path through the identity.

    Frame positions run over [-1/2, 1/2] of the exposure, with frame
    ``frames // 2`` at 0 (the sharp key frame, as in GoPro's averaged pairs).
    Motion grows as t (velocity) plus t^2 (acceleration), so paths curve.
    """
    extent = 2.0 + 28.0 * rng.random() ** 2.0          # pixels moved over the exposure
    angle = rng.uniform(0, 2 * np.pi)
    vel = extent * np.array([np.cos(angle), np.sin(angle)])
    acc = rng.normal(0, 0.35 * extent, 2)
    spin = np.deg2rad(rng.normal(0, 1.2))               # rotation over the exposure
    zoom = rng.normal(0, 0.02)
    persp = rng.normal(0, 1.5e-5, 2)
    centre = np.array([rng.uniform(-0.5, 1.5) * w, rng.uniform(-0.5, 1.5) * h])
    t = (np.arange(frames) - frames // 2) / max(frames - 1, 1)
    mats = []
    for tk in t:
        c, s = np.cos(spin * tk), np.sin(spin * tk)
        z = 1.0 + zoom * tk
        a = np.array([[z * c, -z * s], [z * s, z * c]])
        shift = vel * tk + acc * tk * tk + centre - a @ centre
        m = np.eye(3)
        m[:2, :2], m[:2, 2] = a, shift
        m[2, :2] = persp * tk
        mats.append(m)
    return mats


def moving_object_mask(h, w, rng):
    """A soft blob (smooth random field, thresholded) covering 5-40 % of the frame."""
    f = smooth_field(h, w, rng, int(rng.integers(2, 5)))
    thr = np.quantile(f, 1.0 - rng.uniform(0.05, 0.4))
    m = (f >= thr).astype(np.float32)
    return cv2.GaussianBlur(m, (0, 0), 1.0)


def video_blur(img, rng):
    """GoPro-style blur of a clean image (H x W x 3, [0, 1]): the average, in
    linear light, of warped copies along a smooth camera path; 30 % of the
    time a second layer (an object) moves along a path of its own."""
    h, w = img.shape[:2]
    frames = int(rng.integers(7, 14))
    lin = srgb_to_linear(img)
    if rng.random() < 0.3:
        lin = lin * (1.0 + 1.5 * (lin > 0.95))
    flags = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    cam = camera_path(h, w, rng, frames)
    obj = camera_path(h, w, rng, frames) if rng.random() < 0.3 else None
    mask = moving_object_mask(h, w, rng) if obj is not None else None
    acc = np.zeros_like(lin)
    for k in range(frames):
        frame = cv2.warpPerspective(lin, cam[k], (w, h), **flags)
        if obj is not None:
            m = obj[k] @ cam[k]
            fg = cv2.warpPerspective(lin, m, (w, h), **flags)
            a = cv2.warpPerspective(mask, m, (w, h), **flags)[:, :, None]
            frame = frame * (1 - a) + fg * a
        acc += frame
    out = linear_to_srgb(acc / frames)
    out = add_noise(out, rng, 0.01)
    if rng.random() < 0.6:
        out = jpeg(out, rng, 70, 95)
    return out, img


# ---------------------------------------------------------------- haze
def depth_map(img, rng):
    h, w = img.shape[:2]
    y = np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None]   # 1 at top
    gamma = rng.uniform(0.5, 2.0)
    d = np.repeat(y ** gamma, w, axis=1) * rng.uniform(0.3, 1.0)
    d += smooth_field(h, w, rng, int(rng.integers(2, 7))) * rng.uniform(0.2, 0.8)
    # bright, unsaturated regions near the top look like sky: far away
    gray = img.mean(axis=2)
    sat = img.max(axis=2) - img.min(axis=2)
    sky = np.clip((gray - 0.55) / 0.35, 0, 1) * np.clip(1 - sat / 0.25, 0, 1) * (y ** 0.5)
    sky = cv2.GaussianBlur(sky.astype(np.float32), (0, 0), max(1.0, 0.01 * max(h, w)))
    d += sky * rng.uniform(0.0, 1.5)
    # small structure-following variation (edges of objects): blurred luminance
    if rng.random() < 0.5:
        lum = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), max(2.0, 0.03 * max(h, w)))
        d += (lum - lum.mean()) * rng.uniform(-0.5, 0.5)
    d -= d.min()
    d /= max(d.max(), 1e-6)
    return d.astype(np.float32)


def haze(img, rng):
    d = depth_map(img, rng)
    beta = 0.3 + 2.2 * rng.random() ** 1.5   # light haze more often than dense
    base = rng.uniform(0.0, 0.3)          # some haze even on the nearest things
    t = np.exp(-beta * (base + d))[:, :, None].astype(np.float32)
    a = rng.uniform(0.65, 1.0)
    tint = np.array([rng.normal(0, 0.04), rng.normal(0, 0.03), rng.normal(0, 0.05)], np.float32)
    if rng.random() < 0.3:   # yellowish / dusty haze
        tint += np.array([0.05, 0.02, -0.08], np.float32) * rng.random()
    A = np.clip(a + tint, 0.4, 1.0)[None, None, :]
    out = img * t + A * (1 - t)
    out = add_noise(out.astype(np.float32), rng, 0.008)
    if rng.random() < 0.5:
        out = jpeg(out, rng, 75, 95)
    return out, img


# ---------------------------------------------------------------- raindrops
def raindrop(img, rng, density=None, scale=None, drizzle_share=DRIZZLE_SHARE):
    """``scale``: short side (pixels) of the whole photo the patch comes from;
    drop sizes and defocus are relative to it. ``drizzle_share``: the chance of a drizzle."""
    h, w = img.shape[:2]
    scale = float(scale or min(h, w))
    if density is None:
        density = rng.uniform(0.1, 1.0)
    drizzle = rng.random() < drizzle_share
    per_photo = rng.uniform(200, 700) if drizzle else rng.uniform(20, 300)  # drops on a 3:2 photo
    n = max(int(density * per_photo * h * w / (1.5 * scale * scale)), 1)
    # background seen through the drops: defocused scene
    sig = rng.uniform(1.0, 4.0) * scale / 256.0 + 0.8
    bg_blur = cv2.GaussianBlur(img, (0, 0), sig)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mapx, mapy = gx.copy(), gy.copy()
    alpha = np.zeros((h, w), np.float32)
    shade = np.zeros((h, w), np.float32)
    spec = np.zeros((h, w), np.float32)
    if drizzle:
        rmin, rmax = 0.008 * scale, rng.uniform(0.02, 0.035) * scale
        field = rng.uniform(0.1, 0.3) * scale  # the scene each drop shows, whatever its size
    else:
        rmin, rmax = 0.008 * scale, rng.uniform(0.04, 0.12) * scale
    for _ in range(n):
        r = rmin + (rmax - rmin) * rng.random() ** 2.0
        cx, cy = rng.uniform(-r, w + r), rng.uniform(-r, h + r)
        ax = r * rng.uniform(0.75, 1.25)
        ay = r * rng.uniform(0.75, 1.35)
        rot = rng.uniform(0, np.pi)
        x0, x1 = int(max(cx - 1.5 * r - 2, 0)), int(min(cx + 1.5 * r + 3, w))
        y0, y1 = int(max(cy - 1.5 * r - 2, 0)), int(min(cy + 1.5 * r + 3, h))
        if x1 <= x0 or y1 <= y0:
            continue
        dx, dy = gx[y0:y1, x0:x1] - cx, gy[y0:y1, x0:x1] - cy
        c, s = np.cos(rot), np.sin(rot)
        u, v = (c * dx + s * dy) / ax, (-s * dx + c * dy) / ay
        # wobbly outline
        th = np.arctan2(v, u)
        wob = 1.0 + 0.12 * rng.random() * np.sin(3 * th + rng.uniform(0, 6.3)) \
            + 0.08 * rng.random() * np.sin(5 * th + rng.uniform(0, 6.3))
        rr = np.sqrt(u * u + v * v) / wob
        inside = rr < 1.0
        a = np.clip((1.0 - rr) / 0.25, 0, 1) * rng.uniform(0.75, 1.0)
        # refraction: inverted view of a region around (and above) the drop; a small drop
        # is a fish-eye that shows a wide field, mostly the brighter scene above it, so
        # drizzle drops stand out from what is behind them
        if drizzle:
            mag, lift = field / r, field * rng.uniform(0.5, 1.5) / r
        else:
            mag, lift = rng.uniform(0.3, 1.0), rng.uniform(0, 1.5)
        sx = cx - mag * dx + rng.normal(0, 0.3 * r)
        sy = cy - mag * dy - lift * r
        sel = inside & (a > alpha[y0:y1, x0:x1])
        mapx[y0:y1, x0:x1][sel] = sx[sel]
        mapy[y0:y1, x0:x1][sel] = sy[sel]
        alpha[y0:y1, x0:x1] = np.maximum(alpha[y0:y1, x0:x1], a * inside)
        # darker rim at the bottom edge, bright highlight at the top
        rim = np.clip((rr - 0.7) / 0.3, 0, 1) * inside * np.clip(v * 1.2 + 0.3, 0, 1)
        shade[y0:y1, x0:x1] = np.maximum(shade[y0:y1, x0:x1], rim * rng.uniform(0.1, 0.45))
        hx, hy = u + 0.35, v + 0.45
        hl = np.exp(-(hx * hx + hy * hy) / (2 * 0.12 ** 2)) * rng.uniform(0.2, 0.8)
        spec[y0:y1, x0:x1] = np.maximum(spec[y0:y1, x0:x1], hl * inside)
    refr = cv2.remap(bg_blur, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    refr = cv2.GaussianBlur(refr, (0, 0), rng.uniform(0.5, 2.0))
    refr = refr * rng.uniform(0.9, 1.2) + rng.uniform(0.0, 0.08)
    # drops are out of focus too: soften everything
    if drizzle:  # the lens focused on the scene: the drops a little soft, their rims faint
        soft = rng.uniform(0.3, 1.0) * scale / 256.0 + 0.3
        shade *= 0.5
    elif rng.random() < DEFOCUSED_DROP_SHARE:
        soft = rng.uniform(2.5, 6.0) * scale / 256.0 + 1.0
        shade *= 0.5
        spec *= 0.3
    else:
        soft = rng.uniform(0.2, 2.5) * scale / 256.0 + 0.3
    alpha = cv2.GaussianBlur(alpha, (0, 0), soft)[:, :, None]
    shade = cv2.GaussianBlur(shade, (0, 0), soft)[:, :, None]
    spec = cv2.GaussianBlur(spec, (0, 0), soft)[:, :, None]
    out = img * (1 - alpha) + refr * alpha
    out = out * (1 - shade) + spec
    if rng.random() < 0.1:  # drops on glass rarely come with streaks in the real photos
        out = streaks(out, rng)
    # glass in front of the lens: a little veiling glare / contrast loss
    if rng.random() < 0.5:
        g = rng.uniform(0.0, 0.06)
        out = out * (1 - g) + g * out.mean()
    out = add_noise(np.clip(out, 0, 1).astype(np.float32), rng, 0.008)
    if rng.random() < 0.5:
        out = jpeg(out, rng, 75, 95)
    return out, img


def streaks(img, rng):
    h, w = img.shape[:2]
    noise = (rng.random((h, w)) < rng.uniform(0.002, 0.01)).astype(np.float32)
    length = int(rng.integers(7, 25)) | 1
    k = np.zeros((length, length), np.float32)
    k[:, length // 2] = 1.0
    ang = rng.normal(0, 15)
    m = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), ang, 1.0)
    k = cv2.warpAffine(k, m, (length, length))
    k /= max(k.sum(), 1e-6)
    s = cv2.filter2D(noise, -1, k) * length * rng.uniform(0.2, 0.6)
    s = cv2.GaussianBlur(s, (0, 0), 0.7)[:, :, None]
    return np.clip(img + s, 0, 1)


# ---------------------------------------------------------------- patches
def random_crop(img, size, rng):
    h, w = img.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return img[y:y + size, x:x + size]


def augment(img, rng):
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.5:
        img = np.rot90(img, 2)   # keep 'up' roughly meaningful except for 180
    return np.ascontiguousarray(img)


def to_float(img):
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    return img.astype(np.float32)


def _rescaled_crop(img, size, rng):
    """A random ``size`` crop of the photo scaled by up to 2x down, flipped half the time.

    Returns the float crop and the short side of the scaled photo (the scene scale).
    """
    h, w = img.shape[:2]
    s = rng.uniform(max(size / min(h, w), 0.5), 1.0) if min(h, w) > size else size / min(h, w)
    if abs(s - 1.0) > 1e-3:
        img = cv2.resize(img, (max(size, round(w * s)), max(size, round(h * s))), interpolation=cv2.INTER_AREA)
    crop = to_float(random_crop(img, size, rng))
    if rng.random() < 0.5:
        crop = np.ascontiguousarray(crop[:, ::-1])
    return crop, min(img.shape[:2])


def make_pair(task, image, patch, rng):
    """Return (degraded, clean) float32 patch x patch x 3 RGB in [0, 1].

    ``image`` is a clean RGB photo (uint8 or float).  The scene scale is
    randomised (downscaling by up to 2x) so the network sees varied detail.
    """
    img = image
    h, w = img.shape[:2]
    if task == "deblur":
        # blur a larger area so the border of the patch is correct, then crop
        margin = 32
        crop, _ = _rescaled_crop(img, patch + 2 * margin, rng)
        u = rng.random()
        if u < 0.05:                   # a few sharp examples: do no harm
            deg, clean = add_noise(crop, rng, 0.005), crop
        elif u < DEBLUR_VIDEO_SHARE + 0.05:
            deg, clean = video_blur(crop, rng)
        else:
            deg, clean = blur(crop, rng)
        return (np.ascontiguousarray(deg[margin:-margin, margin:-margin]),
                np.ascontiguousarray(clean[margin:-margin, margin:-margin]))
    if task == "dehaze":
        # haze is a whole-scene effect: synthesise on a downscaled scene
        # (keeping the top-to-bottom orientation), then crop
        target = rng.uniform(patch, max(patch, min(h, w, 2.5 * patch)))
        s = target / min(h, w)
        img = cv2.resize(img, (max(patch, round(w * s)), max(patch, round(h * s))), interpolation=cv2.INTER_AREA)
        img = to_float(img)
        if rng.random() < 0.5:
            img = np.ascontiguousarray(img[:, ::-1])
        deg, clean = haze(img, rng)
        hh, ww = img.shape[:2]
        y = int(rng.integers(0, hh - patch + 1))
        x = int(rng.integers(0, ww - patch + 1))
        return (np.ascontiguousarray(deg[y:y + patch, x:x + patch]),
                np.ascontiguousarray(clean[y:y + patch, x:x + patch]))
    if task == "deraindrop":
        crop, scene_side = _rescaled_crop(img, patch, rng)
        return raindrop(crop, rng, scale=scene_side)
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
