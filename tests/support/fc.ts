// fast-check for the suite, on a fixed seed: a property test draws the
// same cases on every run and every runtime, so a run that passes passes
// again, and a failure is there for anyone to see. FC_SEED picks other
// cases (an integer), to look further by hand; fast-check prints the
// seed of any failure.
import process from "node:process";
import fc from "fast-check";

const seed = Number(process.env.FC_SEED ?? 0x6e6f6465);
if (!Number.isSafeInteger(seed)) {
  throw new Error(`FC_SEED must be an integer, not ${process.env.FC_SEED}`);
}
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });

export { fc };
