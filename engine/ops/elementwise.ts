/** Elementwise ops with broadcasting: add/sub/mul/div, scaling, activations. */
import type { BinaryOp, UnaryOp } from "../backend.ts";
import { empty, record, type Tensor } from "../tensor.ts";
import {
  broadcastShape,
  broadcastView,
  needF32,
  scalarConst,
  simplify,
  sumToShape,
} from "./util.ts";

/** out = a op b with numpy broadcasting, not recorded. */
export function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  needF32(op, a, b);
  const shape = broadcastShape(a.shape, b.shape);
  const out = empty(a.backend, shape);
  if (out.numel === 0) return out;
  const [s, [va, vb]] = simplify(shape, [
    broadcastView(a.shape, shape),
    broadcastView(b.shape, shape),
  ]);
  a.backend.binary({ op, a: a.buf, va, b: b.buf, vb, out: out.buf, shape: s });
  return out;
}

/** y = f(x), not recorded. */
export function unaryRaw(op: UnaryOp, x: Tensor): Tensor {
  needF32(op, x);
  const y = empty(x.backend, x.shape);
  x.backend.unary(op, x.buf, y.buf, x.numel);
  return y;
}

/** y = alpha * x, not recorded. */
export function scaleRaw(x: Tensor, alpha: number): Tensor {
  const y = empty(x.backend, x.shape);
  x.backend.axpby({ x: x.buf, y: y.buf, alpha, beta: 0, n: x.numel });
  return y;
}

/** a + b (broadcasting). */
export function add(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw("add", a, b), "add", [a, b], (g) => [
    a.requiresGrad ? sumToShape(g, a.shape) : null,
    b.requiresGrad ? sumToShape(g, b.shape) : null,
  ]);
}

/** a - b (broadcasting). */
export function sub(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw("sub", a, b), "sub", [a, b], (g) => {
    let gb: Tensor | null = null;
    if (b.requiresGrad) {
      const s = sumToShape(g, b.shape);
      gb = scaleRaw(s, -1);
      s.dispose();
    }
    return [a.requiresGrad ? sumToShape(g, a.shape) : null, gb];
  });
}

/** a * b (broadcasting). */
export function mul(a: Tensor, b: Tensor): Tensor {
  return record(binaryRaw("mul", a, b), "mul", [a, b], (g) => [
    a.requiresGrad ? reduced(binaryRaw("mul", g, b), a.shape) : null,
    b.requiresGrad ? reduced(binaryRaw("mul", g, a), b.shape) : null,
  ]);
}

/** a / b (broadcasting). */
export function div(a: Tensor, b: Tensor): Tensor {
  const out = binaryRaw("div", a, b);
  return record(out, "div", [a, b], (g) => {
    const ga = a.requiresGrad ? reduced(binaryRaw("div", g, b), a.shape) : null;
    let gb: Tensor | null = null;
    if (b.requiresGrad) {
      // d(a/b)/db = -out / b
      const t = binaryRaw("mul", g, out);
      const t2 = binaryRaw("div", t, b);
      t.dispose();
      const s = reduced(t2, b.shape);
      gb = scaleRaw(s, -1);
      s.dispose();
    }
    return [ga, gb];
  });
}

function reduced(t: Tensor, shape: readonly number[]): Tensor {
  const r = sumToShape(t, shape);
  t.dispose();
  return r;
}

/** alpha * x. */
export function scale(x: Tensor, alpha: number): Tensor {
  return record(scaleRaw(x, alpha), "scale", [x], (g) => [scaleRaw(g, alpha)]);
}

/** x + c for a constant c. */
export function addScalar(x: Tensor, c: number): Tensor {
  const k = scalarConst(x, c);
  const y = binaryRaw("add", x, k);
  k.dispose();
  return record(y, "addScalar", [x], (g) => [g.view(g.shape)]);
}

/** x * c for a constant c (same as scale). */
export function mulScalar(x: Tensor, c: number): Tensor {
  return scale(x, c);
}

function activation(op: "relu" | "gelu" | "tanh" | "sigmoid", x: Tensor): Tensor {
  return record(unaryRaw(op, x), op, [x], (g) => {
    const dx = empty(x.backend, x.shape);
    x.backend.unaryBackward({ op, x: x.buf, dy: g.buf, dx: dx.buf, n: x.numel });
    return [dx];
  });
}

/** max(x, 0). */
export const relu = (x: Tensor): Tensor => activation("relu", x);
/** GELU, erf form. */
export const gelu = (x: Tensor): Tensor => activation("gelu", x);
/** tanh(x). */
export const tanh = (x: Tensor): Tensor => activation("tanh", x);
/** 1 / (1 + exp(-x)). */
export const sigmoid = (x: Tensor): Tensor => activation("sigmoid", x);

/** exp(x). */
export function exp(x: Tensor): Tensor {
  const y = unaryRaw("exp", x);
  return record(y, "exp", [x], (g) => [binaryRaw("mul", g, y)]);
}

/** Natural log. */
export function log(x: Tensor): Tensor {
  return record(unaryRaw("log", x), "log", [x], (g) => [binaryRaw("div", g, x)]);
}

/** -x. */
export function neg(x: Tensor): Tensor {
  return scale(x, -1);
}

/** sqrt(x). */
export function sqrt(x: Tensor): Tensor {
  const y = unaryRaw("sqrt", x);
  return record(y, "sqrt", [x], (g) => {
    const t = binaryRaw("div", g, y);
    const r = scaleRaw(t, 0.5);
    t.dispose();
    return [r];
  });
}

/** 1 / sqrt(x). */
export function rsqrt(x: Tensor): Tensor {
  const y = unaryRaw("rsqrt", x);
  return record(y, "rsqrt", [x], (g) => {
    // d/dx x^-1/2 = -0.5 * y^3
    const y2 = binaryRaw("mul", y, y);
    const y3 = binaryRaw("mul", y2, y);
    const t = binaryRaw("mul", g, y3);
    const r = scaleRaw(t, -0.5);
    y2.dispose(), y3.dispose(), t.dispose();
    return [r];
  });
}

/** x * x. */
export function square(x: Tensor): Tensor {
  return record(unaryRaw("square", x), "square", [x], (g) => {
    const t = binaryRaw("mul", g, x);
    const r = scaleRaw(t, 2);
    t.dispose();
    return [r];
  });
}
