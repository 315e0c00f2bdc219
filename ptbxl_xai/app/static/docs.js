// The API page (/docs): Swagger UI from files this server serves (fastapi-offline's copy), no CDN.
window.addEventListener('load', () => {
  window.ui = SwaggerUIBundle({
    url: 'openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null, // the default badge would ask validator.swagger.io about this API
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
