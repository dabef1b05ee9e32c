/// The OpenAPI 3.1 description of `detr serve`'s HTTP API, served at `GET /openapi.json`
/// (docs/serving.md explains each route; a test checks that every route here is served).
enum OpenAPIDocument {
  static let json = #"""
    {
      "openapi": "3.1.0",
      "info": {
        "title": "swift-detr detection service",
        "version": "1",
        "description": "A swift-detr detector behind HTTP (detr serve). Concurrent requests are batched; every answer equals the image's alone."
      },
      "paths": {
        "/v1/detect": {
          "post": {
            "summary": "Detect objects in one image",
            "parameters": [
              {"name": "threshold", "in": "query", "schema": {"type": "number", "minimum": 0, "maximum": 1}, "description": "Keep detections scoring above this (default: the server's --threshold)."},
              {"name": "max_detections", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}, "description": "At most this many detections, best first."},
              {"name": "size", "in": "query", "schema": {"type": "integer"}, "description": "Shorter side the image is resized to (the longer side's limit scales with it); within the range GET /v1/model gives."},
              {"name": "draw", "in": "query", "schema": {"type": "boolean"}, "description": "Answer the image with its boxes drawn (PNG) instead of JSON."}
            ],
            "requestBody": {
              "required": true,
              "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {"schema": {"type": "object", "properties": {"image": {"type": "string", "format": "binary"}}, "required": ["image"]}}
              }
            },
            "responses": {
              "200": {
                "description": "The detections (JSON), or with draw=true the image with its boxes drawn",
                "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/DetectAnswer"}},
                  "image/png": {"schema": {"type": "string", "format": "binary"}}
                }
              },
              "400": {"description": "Not a JPEG or PNG, a corrupt image, a bad multipart body, an unknown or invalid query field", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "413": {"description": "The body or the image's pixel count is over the server's limit", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "503": {"description": "The queue is full, the model is warming up, or the server is stopping; retry after Retry-After seconds", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "504": {"description": "Not answered within the server's request timeout", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
          }
        },
        "/v1/model": {
          "get": {
            "summary": "The served model: family, parameters, categories, input sizes, device, precision, batching",
            "responses": {"200": {"description": "The model", "content": {"application/json": {"schema": {"type": "object"}}}}}
          }
        },
        "/healthz": {"get": {"summary": "Liveness: the process answers", "responses": {"200": {"description": "Alive"}}}},
        "/readyz": {
          "get": {
            "summary": "Readiness: the model is loaded and warmed up",
            "responses": {"200": {"description": "Ready"}, "503": {"description": "Warming up"}}
          }
        },
        "/metrics": {
          "get": {
            "summary": "Prometheus metrics: requests, errors by kind, latencies, batch sizes, queue depth",
            "responses": {"200": {"description": "Text exposition format 0.0.4", "content": {"text/plain": {"schema": {"type": "string"}}}}}
          }
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
      },
      "components": {
        "schemas": {
          "DetectAnswer": {
            "type": "object",
            "required": ["model", "image", "input", "detections", "timing"],
            "properties": {
              "model": {"type": "object", "properties": {"family": {"type": "string"}}},
              "image": {"$ref": "#/components/schemas/Size"},
              "input": {"$ref": "#/components/schemas/Size"},
              "detections": {"type": "array", "items": {"$ref": "#/components/schemas/Detection"}},
              "timing": {"type": "object", "properties": {"total_ms": {"type": "number"}, "batch_size": {"type": "integer"}}}
            }
          },
          "Size": {"type": "object", "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}}},
          "Detection": {
            "type": "object",
            "required": ["category_id", "category_name", "score", "box"],
            "properties": {
              "category_id": {"type": "integer", "description": "The checkpoint's category id (COCO's for COCO models)"},
              "category_name": {"type": "string"},
              "score": {"type": "number"},
              "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4, "description": "x0, y0, x1, y1 in pixels of the image as sent"}
            }
          },
          "Error": {
            "type": "object",
            "properties": {"error": {"type": "object", "properties": {"kind": {"type": "string"}, "message": {"type": "string"}}}}
          }
        }
      }
    }
    """#
}
