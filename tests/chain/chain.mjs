// The test chain's deployer (tests/common/chain.sh runs it; docs/chain.md).
//   node chain.mjs compile OUT_DIR
//       compiles DstackKms.sol and DstackApp.sol (beside this file) with npm's
//       solc and writes OUT_DIR/<Contract>.json: {abi, bytecode, methods}
//       (methods: solc's selector of every function signature)
//   node chain.mjs deploy RPC_URL OUT_DIR CONTRACT [bool...]
//       deploys CONTRACT from the chain's first (unlocked) account, with
//       static constructor arguments; prints the contract's address
//   node chain.mjs send RPC_URL OUT_DIR CONTRACT ADDRESS SIGNATURE [arg...]
//       sends one owner transaction (static arguments only: bytes32, address,
//       bool) and waits for a successful receipt
// Solc comes from $CVM_CHAIN_NPM_DIR (scripts/setup.sh). Every wait is bounded.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const npmDir = process.env.CVM_CHAIN_NPM_DIR || "/var/cache/cvmkit/npm-chain";
const CONTRACTS = ["DstackKms", "DstackApp"];
const RPC_TIMEOUT_MS = 10000;
const RECEIPT_WAIT_MS = 20000;

function die(msg) {
  console.error(`chain.mjs: ${msg}`);
  process.exit(1);
}

function compile(outDir) {
  let solc;
  try {
    solc = createRequire(path.join(npmDir, "package.json"))("solc");
  } catch (e) {
    die(`npm's solc is missing in ${npmDir} (run scripts/setup.sh): ${e.message}`);
  }
  const sources = {};
  for (const c of CONTRACTS) sources[`${c}.sol`] = { content: fs.readFileSync(path.join(here, `${c}.sol`), "utf8") };
  const input = {
    language: "Solidity",
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.methodIdentifiers"] } },
    },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors || []).filter((e) => e.severity === "error");
  if (errors.length) die(`solc ${solc.version()} failed:\n${errors.map((e) => e.formattedMessage).join("\n")}`);
  fs.mkdirSync(outDir, { recursive: true });
  for (const c of CONTRACTS) {
    const k = out.contracts[`${c}.sol`][c];
    fs.writeFileSync(
      path.join(outDir, `${c}.json`),
      JSON.stringify({ abi: k.abi, bytecode: k.evm.bytecode.object, methods: k.evm.methodIdentifiers }, null, 1),
    );
  }
  console.log(`solc ${solc.version()}: ${CONTRACTS.join(", ")} in ${outDir}`);
}

let rpcId = 0;
async function rpc(url, method, params) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
    signal: AbortSignal.timeout(RPC_TIMEOUT_MS),
  });
  const j = await res.json();
  if (j.error) die(`${method}: ${JSON.stringify(j.error)}`);
  return j.result;
}

function word(type, v) {
  const hex = (s, n) => {
    const h = s.replace(/^0x/, "").toLowerCase();
    if (!/^[0-9a-f]*$/.test(h) || h.length !== n) die(`${type} argument ${s}: want ${n} hex digits`);
    return h;
  };
  switch (type) {
    case "bytes32":
      return hex(v, 64);
    case "address":
      return "0".repeat(24) + hex(v, 40);
    case "bool":
      if (v !== "true" && v !== "false") die(`bool argument ${v}: want true or false`);
      return (v === "true" ? "1" : "0").padStart(64, "0");
    default:
      die(`argument type ${type} is not supported here (static bytes32, address, bool only)`);
  }
}

function encodeArgs(types, args) {
  if (types.length !== args.length) die(`want ${types.length} arguments, got ${args.length}`);
  return types.map((t, i) => word(t, args[i])).join("");
}

async function transact(url, tx) {
  const [from] = await rpc(url, "eth_accounts", []);
  const hash = await rpc(url, "eth_sendTransaction", [{ from, gas: "0x989680", ...tx }]);
  const deadline = Date.now() + RECEIPT_WAIT_MS;
  while (Date.now() < deadline) {
    const rc = await rpc(url, "eth_getTransactionReceipt", [hash]);
    if (rc) {
      if (rc.status !== "0x1") die(`transaction ${hash} failed (status ${rc.status})`);
      return rc;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  die(`no receipt for ${hash} within ${RECEIPT_WAIT_MS} ms`);
}

function load(outDir, contract) {
  return JSON.parse(fs.readFileSync(path.join(outDir, `${contract}.json`), "utf8"));
}

const [cmd, ...a] = process.argv.slice(2);
if (cmd === "compile" && a.length === 1) {
  compile(a[0]);
} else if (cmd === "deploy" && a.length >= 3) {
  const [url, outDir, contract, ...args] = a;
  const k = load(outDir, contract);
  const rc = await transact(url, { data: "0x" + k.bytecode + encodeArgs(args.map(() => "bool"), args) });
  console.log(rc.contractAddress);
} else if (cmd === "send" && a.length >= 5) {
  const [url, outDir, contract, to, sig, ...args] = a;
  const k = load(outDir, contract);
  const sel = k.methods[sig];
  if (!sel) die(`${contract} has no function ${sig}`);
  const types = sig.slice(sig.indexOf("(") + 1, -1).split(",").filter((t) => t);
  await transact(url, { to, data: "0x" + sel + encodeArgs(types, args) });
} else {
  die("usage: chain.mjs compile OUT_DIR | deploy URL OUT_DIR CONTRACT [bool...] | send URL OUT_DIR CONTRACT ADDR SIG [arg...]");
}
