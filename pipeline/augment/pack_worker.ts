/// <reference lib="deno.worker" />
/** Worker of pack.ts: decodes one image file and resizes its short side (antialiased). */
import { AugmentKernel } from "../../kernels/augment.ts";
import { decodeImage } from "../data/image.ts";
import type { PackReply, PackRequest } from "./pack.ts";
import { resizeShortSide } from "./shards.ts";

const kernel = AugmentKernel.load();

self.onmessage = async (ev: MessageEvent<PackRequest>) => {
  const { id, file, shortSide } = ev.data;
  let reply: PackReply;
  try {
    const img = resizeShortSide(await kernel, await decodeImage(file), shortSide);
    reply = { id, ok: true, width: img.width, height: img.height, data: img.data };
  } catch (e) {
    reply = { id, ok: false, message: (e as Error).message };
  }
  self.postMessage(reply, reply.ok ? [reply.data.buffer] : []);
};
