/** Worker body for ImageDecodePool: decodes one image file per message. */
import { decodeImage } from "./image.ts";

interface Job {
  id: number;
  path: string;
}

self.onmessage = async (ev: MessageEvent<Job>) => {
  const { id, path } = ev.data;
  try {
    const img = await decodeImage(path);
    self.postMessage({ id, width: img.width, height: img.height, data: img.data }, [
      img.data.buffer,
    ]);
  } catch (e) {
    const err = e as Error & { reason?: string };
    self.postMessage({ id, error: err.reason ?? err.message, file: path });
  }
};
