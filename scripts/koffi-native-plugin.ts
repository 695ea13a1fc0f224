import type { Plugin } from "esbuild";
import { KOFFI_NATIVE_GLOBAL } from "../src/platform/native.ts";

/**
 * Replaces koffi's search for its native module in the single executable's bundle. Left alone, koffi's loader
 * require()s "@koromix/koffi-<platform>" resolved from the executable's folder upwards — for
 * C:\Program Files\CamsBioApi\bioapi.exe that reaches C:\node_modules, a folder any Windows user may create — and
 * then tries <exe>\..\..\..\@koromix\… and <exe>\..\..\build\koffi\… (both on C:\ for that path too). Whatever it
 * found would run as LocalSystem. Instead, koffi gets the one module src/platform/native.ts loaded by its exact path,
 * and with none it fails rather than search.
 */
export function koffiExactNative(): Plugin {
  return {
    name: "koffi-exact-native",
    setup(b) {
      b.onLoad({ filter: /[\\/]koffi[\\/]src[\\/]koffi[\\/]src[\\/]static\.c?js$/ }, () => ({
        loader: "js",
        contents: `export function loadStatic() {
  const native = globalThis[${JSON.stringify(KOFFI_NATIVE_GLOBAL)}];
  if (!native) throw new Error("koffi's native module was not loaded by its path first (src/platform/native.ts); refusing to search for it.");
  return native;
}`,
      }));
    },
  };
}
