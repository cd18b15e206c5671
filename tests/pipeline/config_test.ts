import { assertEquals, assertThrows } from "./cache/_assert.ts";
import { join } from "node:path";
import { z } from "zod";
import {
  applySets,
  ConfigError,
  describeSchema,
  loadConfigFile,
  parseSetValue,
  validateConfig,
} from "../../pipeline/config.ts";
import { locateJsonError } from "../../pipeline/data/json_location.ts";
import { pretrainStage } from "../../pipeline/stages/pretrain.ts";

const schema = z.strictObject({
  lr: z.number().positive().default(0.2).describe("learning rate"),
  name: z.string().default("r50"),
  optim: z.strictObject({
    momentum: z.number().default(0.9),
    groups: z.array(z.string()).default(["cnn", "head"]),
  }).default({ momentum: 0.9, groups: ["cnn", "head"] }),
  mode: z.enum(["a", "b"]).default("a"),
});

Deno.test("--set values: JSON when it parses, else string; dotted keys create objects", () => {
  assertEquals(parseSetValue("10"), 10);
  assertEquals(parseSetValue("true"), true);
  assertEquals(parseSetValue("[1,2]"), [1, 2]);
  assertEquals(parseSetValue("resnet50"), "resnet50");
  assertEquals(parseSetValue('"10"'), "10");
  const base = { lr: 1, optim: { momentum: 0.5 } };
  const out = applySets(base, ["optim.momentum=0.8", "name=x=y", "new.deep.key=1"]);
  assertEquals(out, { lr: 1, optim: { momentum: 0.8 }, name: "x=y", new: { deep: { key: 1 } } });
  assertEquals(base.optim.momentum, 0.5, "input not mutated");
  assertThrows(() => applySets({ lr: 1 }, ["lr.x=2"]), ConfigError, "--set lr: is not an object");
  assertThrows(() => applySets({}, ["novalue"]), ConfigError, "expected key=value");
});

Deno.test("validateConfig: defaults, unknown keys and wrong types named by dotted path", () => {
  assertEquals(validateConfig(schema, {}), {
    lr: 0.2,
    name: "r50",
    optim: { momentum: 0.9, groups: ["cnn", "head"] },
    mode: "a",
  });
  assertThrows(
    () => validateConfig(schema, { lrr: 1 }, "pretrain config"),
    ConfigError,
    'pretrain config: unknown key "lrr"',
  );
  assertThrows(
    () => validateConfig(schema, { optim: { momentum: 0.9, nesterov: true } }),
    ConfigError,
    '"optim.nesterov"',
  );
  assertThrows(
    () => validateConfig(schema, { optim: { momentum: "high" } }),
    ConfigError,
    'key "optim.momentum": Invalid input: expected number, received string',
  );
  assertThrows(
    () => validateConfig(schema, { optim: { groups: ["a", 3] } }),
    ConfigError,
    'key "optim.groups.1"',
  );
  assertThrows(() => validateConfig(schema, { mode: "c" }), ConfigError, 'key "mode"');
  assertThrows(() => validateConfig(schema, { lr: -1 }), ConfigError, 'key "lr"');
  // a non-strict schema still rejects unknown keys (detected as keys parsing dropped)
  const loose = z.object({
    a: z.number().default(1),
    sub: z.object({ b: z.number().default(2) }).default({ b: 2 }),
  });
  assertThrows(() => validateConfig(loose, { sub: { c: 1 } }), ConfigError, '"sub.c"');
});

Deno.test("config files: malformed JSON names file:line:column; non-objects rejected", () => {
  const dir = Deno.makeTempDirSync();
  const p = join(dir, "c.json");
  Deno.writeTextFileSync(p, '{\n  "lr": 0.1,\n  "name": "x",,\n}');
  assertThrows(() => loadConfigFile(p), ConfigError, `${p}:3:15: malformed JSON`);
  Deno.writeTextFileSync(p, "[1]");
  assertThrows(() => loadConfigFile(p), ConfigError, "must be a JSON object");
  assertThrows(
    () => loadConfigFile(join(dir, "none.json")),
    ConfigError,
    "cannot read config file",
  );
});

Deno.test("locateJsonError finds the first syntax error; null for valid JSON", () => {
  assertEquals(locateJsonError('{"a": [1, 2, {"b": null}], "c": "\\u00e9"}'), null);
  assertEquals(locateJsonError('{"a": 1,\n "b": }'), { line: 2, column: 7 });
  assertEquals(locateJsonError('{"a": tru}'), { line: 1, column: 10 });
  assertEquals(locateJsonError('{"a": "x\ny"}'), { line: 1, column: 9 });
  assertEquals(locateJsonError("[1, 2] 3"), { line: 1, column: 8 });
  assertEquals(locateJsonError('{"a": 01}'), { line: 1, column: 8 });
});

Deno.test("describeSchema lists dotted keys with types and defaults", () => {
  const rows = describeSchema(schema);
  const byKey = Object.fromEntries(rows.map((r) => [r.key, r]));
  assertEquals(Object.keys(byKey), ["lr", "name", "optim.momentum", "optim.groups", "mode"]);
  assertEquals(byKey.lr.default, "0.2");
  assertEquals(byKey.lr.description, "learning rate");
  assertEquals(byKey.mode.type, '"a"|"b"');
  assertEquals(byKey["optim.groups"].type, "string[]");
});

Deno.test("config: impossible ranges are errors naming the key", () => {
  for (
    const [set, key] of [
      [{ transform: { scale: [2, 1] } }, "transform.scale"],
      [{ transform: { scale: [0.9, 0.5] } }, "transform.scale"],
      [{ transform: { ratio: [2, 0.5] } }, "transform.ratio"],
    ] as const
  ) {
    assertThrows(
      () => validateConfig(pretrainStage.schema, set, "pretrain config"),
      ConfigError,
      key,
    );
  }
});
