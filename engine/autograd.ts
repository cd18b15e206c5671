/**
 * Reverse-mode differentiation over the define-by-run tape that ops record on their outputs
 * (`Tensor.node`). Intermediate gradients are freed as soon as they have been propagated;
 * leaf gradients accumulate into `.grad` (kept across `tidy` scopes until `zeroGrad`).
 */
import { setGradEnabled } from "./scope.ts";
// Type only: tensor.ts calls runBackward, and new tensors come from Tensor.newEmpty/newFull, so
// this module does not load tensor.ts (no import cycle).
import type { Tensor } from "./tensor.ts";

/** Tensors reachable from `root` through tape nodes, inputs before the tensors that use them. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>([root]);
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const inp = inputs[i];
      if (inp.node && !seen.has(inp)) {
        seen.add(inp);
        stack.push([inp, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

function accumulateLeaf(leaf: Tensor, g: Tensor, exclusive: boolean): void {
  const be = leaf.backend;
  if (leaf.grad === null || leaf.grad.disposed) {
    if (exclusive && g.storage.refs === 1) {
      leaf.grad = g.view(leaf.shape).persist();
    } else {
      const copy = leaf.newEmpty(leaf.shape).persist();
      be.axpby({ x: g.buf, y: copy.buf, alpha: 1, beta: 0, n: g.numel });
      leaf.grad = copy;
    }
    leaf.grad.name = leaf.name ? `${leaf.name}.grad` : undefined;
  } else {
    be.axpby({ x: g.buf, y: leaf.grad.buf, alpha: 1, beta: 1, n: g.numel });
  }
}

/**
 * Back-propagates from `root` (a one-element tensor unless `gradOut` is given) and frees the
 * tape behind it.
 */
export function runBackward(root: Tensor, gradOut?: Tensor): void {
  if (!root.requiresGrad) {
    throw new Error(`backward: ${root.describe()} does not require grad`);
  }
  if (!gradOut && root.numel !== 1) {
    throw new Error(`backward: ${root.describe()} is not a scalar; pass gradOut`);
  }
  const be = root.backend;
  const prev = setGradEnabled(false);
  try {
    const g0 = gradOut ? gradOut.view(root.shape) : root.newFull(root.shape, 1);
    if (!root.node) {
      accumulateLeaf(root, g0, false);
      g0.dispose();
      return;
    }
    const order = topoOrder(root);
    const grads = new Map<Tensor, Tensor>([[root, g0]]);
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      grads.delete(t);
      const node = t.node;
      if (!g || !node) {
        g?.dispose();
        continue;
      }
      const ins = node.backward(g);
      for (let i = 0; i < node.inputs.length; i++) {
        const inp = node.inputs[i], ig = ins[i];
        if (!ig || !inp.requiresGrad) continue;
        if (ig.numel !== inp.numel) {
          throw new Error(
            `backward of ${node.op}: gradient [${ig.shape}] for input ${inp.describe()}`,
          );
        }
        if (!inp.node) {
          const exclusive = ig !== g && ins.indexOf(ig) === ins.lastIndexOf(ig);
          accumulateLeaf(inp, ig, exclusive);
          continue;
        }
        const prevG = grads.get(inp);
        if (!prevG) {
          grads.set(inp, ig.view(inp.shape));
        } else {
          const sum = inp.newEmpty(inp.shape);
          be.binary({
            op: "add",
            a: prevG.buf,
            va: { offset: 0, strides: [1] },
            b: ig.buf,
            vb: { offset: 0, strides: [1] },
            out: sum.buf,
            shape: [inp.numel],
          });
          prevG.dispose();
          grads.set(inp, sum);
        }
      }
      g.dispose();
      for (const ig of ins) if (ig && !ig.keep) ig.dispose();
    }
    for (const g of grads.values()) g.dispose();
    for (const t of order) t.node = null;
  } finally {
    setGradEnabled(prev);
  }
}
