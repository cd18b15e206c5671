import { createRefBackend } from "../../engine/backends/ref.ts";
import { runOpSuite } from "./op_suite.ts";

runOpSuite("ref", createRefBackend);
