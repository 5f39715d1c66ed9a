// /docs: Scalar's API reference over this API's own OpenAPI document. Nothing leaves this origin:
// no telemetry, no default fonts, no request proxy, no agent; try-it calls this origin with the
// API key typed into its Bearer field.
(function () {
  "use strict";
  // Zod (inside the bundle) probes `Function("")` unless told not to: the page allows no eval.
  globalThis.__zod_globalConfig = { jitless: true };
  var origin = window.location.origin;
  var mount = document.getElementById("reference");
  var bundle = document.createElement("script");
  bundle.src = mount.dataset.bundle;
  bundle.onload = function () {
    window.Scalar.createApiReference(mount, {
      url: "/v1/openapi.json",
      servers: [{ url: origin, description: "this ChronaPilot API" }],
      authentication: { preferredSecurityScheme: "apiKey" },
      telemetry: false,
      withDefaultFonts: false,
      agent: { disabled: true },
      mcp: { disabled: true },
      showDeveloperTools: "never",
      hideClientButton: true,
      persistAuth: false,
      documentDownloadType: "json",
      externalUrls: { dashboardUrl: origin, registryUrl: origin, proxyUrl: origin, apiBaseUrl: origin },
    });
  };
  document.head.appendChild(bundle);
})();
