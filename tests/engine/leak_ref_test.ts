import { createRefBackend } from "../../engine/backends/ref.ts";
import { runLeakSuite } from "./leak_suite.ts";

runLeakSuite("ref", createRefBackend);
