/** Convolution and pooling over NCHW images. */
import type { Conv2dParams, Pool2dParams } from "../backend.ts";
import { empty, record, type Tensor } from "../tensor.ts";
import { needF32 } from "./util.ts";

/** 2-D convolution: x [N,C,H,W], w [O,C,KH,KW], bias [O] or null -> [N,O,OH,OW]. */
export function conv2d(
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  stride = 1,
  pad = 0,
): Tensor {
  needF32("conv2d", x, w);
  if (x.rank !== 4 || w.rank !== 4 || w.shape[1] !== x.shape[1]) {
    throw new Error(`conv2d: weight ${w.describe()} does not fit input ${x.describe()}`);
  }
  const [N, C, H, W] = x.shape, [O, , KH, KW] = w.shape;
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - KW) / stride) + 1;
  if (OH <= 0 || OW <= 0) throw new Error(`conv2d: input ${x.describe()} too small for kernel`);
  const p: Conv2dParams = { N, C, H, W, O, KH, KW, stride, pad, OH, OW };
  const be = x.backend;
  const y = empty(be, [N, O, OH, OW]);
  be.conv2d({ x: x.buf, w: w.buf, bias: bias ? bias.buf : null, y: y.buf, geom: p });
  const inputs = bias ? [x, w, bias] : [x, w];
  return record(y, "conv2d", inputs, (g) => {
    let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null;
    if (x.requiresGrad) {
      gx = empty(be, x.shape);
      be.conv2dBackwardData({ dy: g.buf, w: w.buf, dx: gx.buf, geom: p });
    }
    if (w.requiresGrad) {
      gw = empty(be, w.shape);
      be.conv2dBackwardFilter({ x: x.buf, dy: g.buf, dw: gw.buf, geom: p, accumulate: false });
    }
    if (bias && bias.requiresGrad) {
      const t = empty(be, [N, O]);
      be.reduceSum({
        x: g.buf,
        y: t.buf,
        outer: N * O,
        reduce: OH * OW,
        inner: 1,
        accumulate: false,
      });
      gb = empty(be, [O]);
      be.reduceSum({ x: t.buf, y: gb.buf, outer: 1, reduce: N, inner: O, accumulate: false });
      t.dispose();
    }
    return [gx, gw, gb];
  });
}

/** Max pooling with a square window (ResNet stem: k 3, stride 2, pad 1). */
export function maxPool2d(x: Tensor, k = 3, stride = 2, pad = 1): Tensor {
  needF32("maxPool2d", x);
  const [N, C, H, W] = x.shape;
  const OH = Math.floor((H + 2 * pad - k) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - k) / stride) + 1;
  const p: Pool2dParams = { N, C, H, W, K: k, stride, pad, OH, OW };
  const be = x.backend;
  const y = empty(be, [N, C, OH, OW]);
  const argmax = empty(be, [N, C, OH, OW], "i32");
  be.maxPool2d(x.buf, y.buf, argmax.buf, p);
  const out = record(y, "maxPool2d", [x], (g) => {
    const gx = empty(be, x.shape);
    be.maxPool2dBackward(g.buf, argmax.buf, gx.buf, p);
    return [gx];
  });
  if (!out.requiresGrad) argmax.dispose();
  return out;
}

/** Mean over H and W: [N,C,H,W] -> [N,C]. */
export function globalAvgPool(x: Tensor): Tensor {
  needF32("globalAvgPool", x);
  const [N, C, H, W] = x.shape;
  const HW = H * W;
  const be = x.backend;
  const t = empty(be, [N, C]);
  be.reduceSum({ x: x.buf, y: t.buf, outer: N * C, reduce: HW, inner: 1, accumulate: false });
  const s = empty(be, [N, C]);
  be.axpby({ x: t.buf, y: s.buf, alpha: 1 / HW, beta: 0, n: N * C });
  t.dispose();
  return record(s, "globalAvgPool", [x], (g) => {
    const gs = empty(be, [N, C]);
    be.axpby({ x: g.buf, y: gs.buf, alpha: 1 / HW, beta: 0, n: N * C });
    const gx = empty(be, x.shape);
    be.copyStrided({
      x: gs.buf,
      vx: { offset: 0, strides: [1, 0] },
      y: gx.buf,
      yOffset: 0,
      shape: [N * C, HW],
    });
    gs.dispose();
    return [gx];
  });
}
