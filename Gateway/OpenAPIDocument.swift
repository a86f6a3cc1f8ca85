// The OpenAPI 3.1 document GET /v1/openapi.json serves: docs/openapi.json, embedded by Ops/openapi-swift.py
// (edit the JSON, then run the script; a test checks that the two are the same text).
enum OpenAPIDocument {
    static let json = #"""
{
 "openapi": "3.1.0",
 "info": {
  "title": "Hume gateway",
  "version": "1.0.0",
  "description": "HTTP/JSON in front of Hume's broker: submit generate, edit or any-route jobs, read their results and images, cancel them, follow a batch, and stream results as Server-Sent Events. Every refusal is an RFC 9457 problem document with one sentence in `detail`. With tokens configured every path except /v1/openapi.json and /v1/health needs `Authorization: Bearer <token>`."
 },
 "servers": [
  {
   "url": "http://127.0.0.1:8080"
  }
 ],
 "security": [
  {
   "bearer": []
  },
  {}
 ],
 "paths": {
  "/v1/jobs": {
   "post": {
    "operationId": "submitJobs",
    "summary": "Submit one job or a batch of jobs",
    "description": "Answers once the broker has made the jobs durable (202), or, with `Prefer: wait=N`, once they finished or N seconds passed (200 when all finished). Without a key, identical content in one batch and route is one job (the broker derives the key).",
    "parameters": [
     {
      "name": "Idempotency-Key",
      "in": "header",
      "required": false,
      "description": "The broker's key for a single job; `<key>/<i>` for job i of `jobs`. A retry with the same key returns the same job.",
      "schema": {
       "type": "string",
       "minLength": 1,
       "maxLength": 1024
      }
     },
     {
      "name": "Prefer",
      "in": "header",
      "required": false,
      "description": "`wait=N`: wait up to N seconds (at most 60) for the results.",
      "schema": {
       "type": "string"
      }
     }
    ],
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/JobRequest"
       },
       "examples": {
        "noop": {
         "summary": "One job through the test stage",
         "value": {
          "route": [
           "noop"
          ],
          "data": "hello",
          "batch": "examples"
         }
        },
        "batch": {
         "summary": "Several jobs under one batch",
         "value": {
          "route": [
           "noop"
          ],
          "batch": "examples",
          "jobs": [
           {
            "data": "one"
           },
           {
            "data": "two",
            "key": "examples-two"
           }
          ]
         }
        },
        "generate": {
         "summary": "A sticker from a prompt",
         "value": {
          "kind": "generate",
          "prompt": "a red apple",
          "params": {
           "database": "emoji",
           "seed": 2
          }
         }
        }
       }
      },
      "multipart/form-data": {
       "schema": {
        "type": "object",
        "properties": {
         "source": {
          "type": "string",
          "description": "The PNG or JPEG to edit."
         },
         "edit": {
          "type": "string"
         },
         "caption": {
          "type": "string"
         },
         "kind": {
          "type": "string",
          "enum": [
           "generate",
           "edit"
          ]
         },
         "route": {
          "type": "string",
          "description": "Stage names, comma-separated."
         },
         "batch": {
          "type": "string"
         },
         "key": {
          "type": "string"
         },
         "prompt": {
          "type": "string"
         },
         "data": {
          "type": "string"
         },
         "params": {
          "type": "string",
          "description": "A JSON object of stage parameters."
         },
         "priority": {
          "type": "string"
         },
         "deadline_ms": {
          "type": "string"
         }
        }
       }
      }
     }
    },
    "responses": {
     "200": {
      "description": "Every job finished within `Prefer: wait`.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Submitted"
        }
       }
      }
     },
     "202": {
      "description": "Accepted and durable; results to come.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Submitted"
        }
       }
      },
      "headers": {
       "Location": {
        "description": "The job's URL (single job).",
        "schema": {
         "type": "string"
        }
       }
      },
      "links": {
       "GetJob": {
        "operationId": "getJob",
        "parameters": {
         "id": "$response.body#/id"
        },
        "description": "The job submitted (single job)."
       },
       "GetJobImage": {
        "operationId": "getJobImage",
        "parameters": {
         "id": "$response.body#/id"
        }
       },
       "CancelJob": {
        "operationId": "cancelJob",
        "parameters": {
         "id": "$response.body#/id"
        }
       },
       "GetBatch": {
        "operationId": "getBatch",
        "parameters": {
         "name": "$response.body#/batch"
        },
        "description": "The batch the jobs joined."
       }
      }
     },
     "400": {
      "description": "The body or a job in it is malformed, names a stage the broker does not serve, has a bad parameter, or holds more jobs than one request takes.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "413": {
      "description": "Over a limit: body size, source picture bytes or pixels, or more jobs than the broker's window could ever hold.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "415": {
      "description": "The body is neither JSON nor multipart/form-data.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "429": {
      "description": "Hume is busy (backpressure); retry after `Retry-After` seconds.",
      "headers": {
       "Retry-After": {
        "schema": {
         "type": "integer"
        },
        "description": "Seconds to wait."
       }
      },
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "502": {
      "$ref": "#/components/responses/BadGateway"
     },
     "503": {
      "description": "The gateway cannot reach the broker.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "504": {
      "$ref": "#/components/responses/BrokerTimeout"
     }
    }
   }
  },
  "/v1/jobs/{id}": {
   "get": {
    "operationId": "getJob",
    "summary": "A job's status and result",
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "description": "The job id POST /v1/jobs returned.",
      "schema": {
       "type": "integer",
       "minimum": 1,
       "maximum": 9007199254740992
      }
     }
    ],
    "responses": {
     "200": {
      "description": "The job.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Job"
        }
       }
      }
     },
     "400": {
      "description": "The id is not a job id.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "404": {
      "description": "There is no such job.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "502": {
      "$ref": "#/components/responses/BadGateway"
     },
     "503": {
      "description": "The gateway cannot reach the broker.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "504": {
      "$ref": "#/components/responses/BrokerTimeout"
     }
    }
   },
   "delete": {
    "operationId": "cancelJob",
    "summary": "Cancel a job",
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "description": "The job id POST /v1/jobs returned.",
      "schema": {
       "type": "integer",
       "minimum": 1,
       "maximum": 9007199254740992
      }
     }
    ],
    "description": "Cancels the job if it is still active; `cancelled` says whether this request did. A finished job is left as it is.",
    "responses": {
     "200": {
      "description": "The job after the request.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Job"
        }
       }
      }
     },
     "400": {
      "description": "The id is not a job id.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "404": {
      "description": "There is no such job.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "502": {
      "$ref": "#/components/responses/BadGateway"
     },
     "503": {
      "description": "The gateway cannot reach the broker.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "504": {
      "$ref": "#/components/responses/BrokerTimeout"
     }
    }
   }
  },
  "/v1/jobs/{id}/image": {
   "get": {
    "operationId": "getJobImage",
    "summary": "A finished job's image (or an edit's mask) as PNG",
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "description": "The job id POST /v1/jobs returned.",
      "schema": {
       "type": "integer",
       "minimum": 1,
       "maximum": 9007199254740992
      }
     },
     {
      "name": "part",
      "in": "query",
      "required": false,
      "schema": {
       "type": "string",
       "enum": [
        "image",
        "mask"
       ],
       "default": "image"
      }
     }
    ],
    "responses": {
     "200": {
      "description": "The PNG (the image carries its metadata in a `hume` text chunk).",
      "content": {
       "image/png": {
        "schema": {
         "type": "string",
         "contentMediaType": "image/png"
        }
       }
      }
     },
     "400": {
      "description": "The id or `part` is not valid.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "404": {
      "description": "There is no such job.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "409": {
      "description": "The job has not finished, did not succeed, or made no image (or no mask).",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "502": {
      "$ref": "#/components/responses/BadGateway"
     },
     "503": {
      "description": "The gateway cannot reach the broker.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "504": {
      "$ref": "#/components/responses/BrokerTimeout"
     }
    }
   }
  },
  "/v1/batches/{name}": {
   "get": {
    "operationId": "getBatch",
    "summary": "A batch's progress",
    "parameters": [
     {
      "name": "name",
      "in": "path",
      "required": true,
      "schema": {
       "type": "string",
       "minLength": 1,
       "maxLength": 200
      }
     }
    ],
    "responses": {
     "200": {
      "description": "Counts by status, from the broker's journal.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Batch"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "404": {
      "description": "There is no such batch.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "502": {
      "$ref": "#/components/responses/BadGateway"
     },
     "503": {
      "description": "The gateway cannot reach the broker.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "504": {
      "$ref": "#/components/responses/BrokerTimeout"
     }
    }
   }
  },
  "/v1/events": {
   "get": {
    "operationId": "streamEvents",
    "summary": "Results as Server-Sent Events",
    "description": "One `result` event per job this gateway submitted, as it finishes (data: the job without its output). Resume with `Last-Event-ID` (`0`: every event held; none: from now on); a `gap` event says events were lost (from another gateway process or older than the ring). `limit` closes the stream after that many events.",
    "parameters": [
     {
      "name": "batch",
      "in": "query",
      "required": false,
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "limit",
      "in": "query",
      "required": false,
      "schema": {
       "type": "integer",
       "minimum": 0,
       "maximum": 1000000000
      }
     },
     {
      "name": "last_event_id",
      "in": "query",
      "required": false,
      "description": "As the Last-Event-ID header.",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "Last-Event-ID",
      "in": "header",
      "required": false,
      "schema": {
       "type": "string"
      }
     }
    ],
    "responses": {
     "200": {
      "description": "An event stream: `result` events (data: a Job without its output) and `gap` events (data: {\"resumed_from\": id}).",
      "content": {
       "text/event-stream": {
        "schema": {
         "type": "object",
         "required": [
          "data"
         ],
         "properties": {
          "id": {
           "type": "string",
           "pattern": "^[0-9]+-[0-9]+$"
          },
          "event": {
           "type": "string",
           "enum": [
            "result",
            "gap"
           ]
          },
          "data": {
           "type": "string"
          },
          "retry": {
           "type": "integer"
          }
         }
        }
       }
      }
     },
     "400": {
      "description": "A query parameter is not valid.",
      "content": {
       "application/problem+json": {
        "schema": {
         "$ref": "#/components/schemas/Problem"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     }
    }
   }
  },
  "/v1/openapi.json": {
   "get": {
    "operationId": "getOpenAPI",
    "summary": "This document",
    "security": [
     {}
    ],
    "responses": {
     "200": {
      "description": "OpenAPI 3.1.",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     }
    }
   }
  },
  "/v1/health": {
   "get": {
    "operationId": "getHealth",
    "summary": "Whether the broker answers",
    "security": [
     {}
    ],
    "responses": {
     "200": {
      "description": "The broker answered STATUS.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Health"
        }
       }
      }
     },
     "503": {
      "description": "The broker did not answer.",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Health"
        }
       }
      }
     }
    }
   }
  }
 },
 "components": {
  "securitySchemes": {
   "bearer": {
    "type": "http",
    "scheme": "bearer"
   }
  },
  "schemas": {
   "Problem": {
    "type": "object",
    "required": [
     "type",
     "title",
     "status",
     "detail",
     "code"
    ],
    "properties": {
     "type": {
      "type": "string"
     },
     "title": {
      "type": "string"
     },
     "status": {
      "type": "integer"
     },
     "detail": {
      "type": "string",
      "description": "One sentence saying what was wrong."
     },
     "code": {
      "type": "string",
      "description": "The broker's error code, or the gateway's."
     }
    }
   },
   "JobFields": {
    "type": "object",
    "properties": {
     "prompt": {
      "type": "string",
      "description": "A generate job's text."
     },
     "data": {
      "type": "string",
      "description": "The first stage's input, as text."
     },
     "data_base64": {
      "type": "string",
      "contentEncoding": "base64"
     },
     "source_base64": {
      "type": "string",
      "contentEncoding": "base64",
      "description": "An edit's source picture, PNG or JPEG."
     },
     "key": {
      "type": "string",
      "maxLength": 1024
     },
     "params": {
      "type": "object",
      "description": "Stage parameters (PROTOCOL.md 11); a job's own are merged over the request's."
     },
     "priority": {
      "type": "integer",
      "minimum": 0,
      "maximum": 255
     },
     "deadline_ms": {
      "type": "integer",
      "minimum": 0,
      "description": "Unix ms after which the job expires."
     }
    }
   },
   "JobRequest": {
    "allOf": [
     {
      "$ref": "#/components/schemas/JobFields"
     },
     {
      "type": "object",
      "properties": {
       "kind": {
        "type": "string",
        "enum": [
         "generate",
         "edit"
        ],
        "description": "generate: route embed,retrieve,denoise; edit: route edit."
       },
       "route": {
        "type": "array",
        "items": {
         "type": "string"
        },
        "minItems": 1,
        "maxItems": 16
       },
       "batch": {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "default": "http"
       },
       "edit": {
        "type": "string",
        "description": "An edit's text (params.edit)."
       },
       "caption": {
        "type": "string",
        "description": "What an edit's source shows (params.caption)."
       },
       "jobs": {
        "type": "array",
        "minItems": 1,
        "maxItems": 1000,
        "items": {
         "$ref": "#/components/schemas/JobFields"
        }
       }
      }
     }
    ]
   },
   "Image": {
    "type": "object",
    "required": [
     "width",
     "height",
     "url"
    ],
    "properties": {
     "width": {
      "type": "integer"
     },
     "height": {
      "type": "integer"
     },
     "url": {
      "type": "string"
     },
     "mask_url": {
      "type": "string"
     },
     "metadata": {
      "description": "How it was made (PROTOCOL.md 11.3, 11.4)."
     }
    }
   },
   "Job": {
    "type": "object",
    "required": [
     "id",
     "status",
     "url"
    ],
    "properties": {
     "id": {
      "type": "integer"
     },
     "key": {
      "type": [
       "string",
       "null"
      ]
     },
     "batch": {
      "type": [
       "string",
       "null"
      ]
     },
     "status": {
      "type": "string",
      "enum": [
       "active",
       "done",
       "failed",
       "dead_letter",
       "cancelled",
       "expired"
      ]
     },
     "url": {
      "type": "string"
     },
     "stage": {
      "type": "integer"
     },
     "stages": {
      "type": "integer"
     },
     "duplicate": {
      "type": "boolean"
     },
     "cancelled": {
      "type": "boolean"
     },
     "image": {
      "$ref": "#/components/schemas/Image"
     },
     "output": {
      "type": "string"
     },
     "output_base64": {
      "type": "string",
      "contentEncoding": "base64"
     },
     "error": {
      "type": "string"
     }
    }
   },
   "Submitted": {
    "oneOf": [
     {
      "$ref": "#/components/schemas/Job"
     },
     {
      "type": "object",
      "required": [
       "batch",
       "accepted",
       "duplicates",
       "jobs"
      ],
      "properties": {
       "batch": {
        "type": "string"
       },
       "accepted": {
        "type": "integer"
       },
       "duplicates": {
        "type": "integer"
       },
       "jobs": {
        "type": "array",
        "items": {
         "$ref": "#/components/schemas/Job"
        }
       }
      }
     }
    ]
   },
   "Batch": {
    "type": "object",
    "required": [
     "batch",
     "total",
     "active",
     "finished",
     "progress"
    ],
    "properties": {
     "batch": {
      "type": "string"
     },
     "total": {
      "type": "integer"
     },
     "active": {
      "type": "integer"
     },
     "done": {
      "type": "integer"
     },
     "failed": {
      "type": "integer"
     },
     "dead_letter": {
      "type": "integer"
     },
     "cancelled": {
      "type": "integer"
     },
     "expired": {
      "type": "integer"
     },
     "finished": {
      "type": "integer"
     },
     "progress": {
      "type": "number",
      "minimum": 0,
      "maximum": 1
     }
    }
   },
   "Health": {
    "type": "object",
    "required": [
     "status",
     "broker"
    ],
    "properties": {
     "status": {
      "type": "string"
     },
     "broker": {
      "type": "string"
     }
    }
   }
  },
  "responses": {
   "Unauthorized": {
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    },
    "description": "No or a wrong bearer token (only when the gateway has tokens)."
   },
   "BadGateway": {
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    },
    "description": "The broker's answer could not be used."
   },
   "BrokerTimeout": {
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    },
    "description": "The broker did not answer in time."
   }
  }
 }
}
"""#
}
