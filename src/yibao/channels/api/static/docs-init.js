// Starts Swagger UI on /docs. A file of its own, not an inline script, so
// that the page runs under a Content-Security-Policy allowing scripts only
// from yibao itself (channels/api/docs.py).
(function () {
  "use strict";
  var url = document.currentScript.getAttribute("data-openapi-url");
  window.ui = SwaggerUIBundle({
    url: url,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // the public validator would be sent the document: never
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
