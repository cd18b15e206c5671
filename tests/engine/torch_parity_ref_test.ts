import { createRefBackend } from "../../engine/backends/ref.ts";
import { runTorchParitySuite } from "./torch_parity_suite.ts";

runTorchParitySuite("ref", createRefBackend);
