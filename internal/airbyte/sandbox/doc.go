// Package sandbox owns the local emulator of the Airbyte Agent Engine / Embedded API: the only
// Airbyte reachable in dev mode, integration tests, chaos soaks and benchmarks.
//
// It is an independent implementation of the server side (it shares no types with package
// airbyte), serving the shapes of Airbyte's published OpenAPI specs and the behaviour described in
// airbyte-api.md: real HS256 JWTs with Airbyte's claims and lifetimes, workspace scoping, the
// ApiErrorResponse error body, asynchronous connector deletion, and injectable faults (latency,
// error statuses, 429 bursts with Retry-After, dropped connections, and "created, but the client
// saw a failure"). State is in memory; each workspace has its own lock, and no lock is held across
// an injected delay.
//
// # API (under /api/v1)
//
//	POST /account/applications/token                {client_id, client_secret}; 401 on bad credentials
//	POST /account/applications/scoped-token         operator token; creates the workspace once
//	POST /account/applications/widget-token         operator token; token = base64 {"token","widgetUrl"}
//	GET  /account/applications/scoped-token/info    scoped token
//	POST /embedded/scoped-token, /embedded/widget-token, GET /embedded/scoped-token/info (deprecated aliases)
//	POST /integrations/connectors                   create; GET lists (?workspace_name|workspace_id|customer_name, &definition_id)
//	GET|PUT|DELETE /integrations/connectors/{id}    DELETE answers 202 {job_id}
//	POST /integrations/connectors/check, /integrations/connectors/{id}/check
//	POST|GET /embedded/sources (alias /integrations/sources), GET|PUT|DELETE /embedded/sources/{id}
//	GET  /embedded/source-templates, GET /workspaces, GET /workspaces/{workspace_id}
//	PUT  /workspaces/{workspace_id}                 operator token; {name?, status: active|inactive, cache_enabled?}
//	DELETE /workspaces/{workspace_id}               operator token; the workspace and its connectors go at once
//	GET  /workspaces/stats                          {active_count, inactive_count, total_count}
//	GET  /integrations/templates/sources            ?use_global, tags, tags_mode; /global; /{id}
//	GET  /embedded/source-templates/{id}
//	GET  /integrations/definitions/sources          ?name (partial, any case); /{id} with the spec
//	POST /integrations/connectors/{id}/execute      {entity, action, params?}; canned answer: status
//	                                                "success", result {entity, action, records: []}
//
// GET /workspaces answers next as the full URL of the next page (filters and limit kept), to be
// followed as it is. Path ids are UUIDs: a malformed one answers 422 (FastAPI's validation).
// A trailing slash on a path is served as the path without it.
//
// Behaviour the real API leaves open, decided here [inferred]:
//   - An operator token creating a connector in a workspace that does not exist creates the
//     workspace (as a scoped-token mint would), except in strict-auth mode, which answers 404
//     as Airbyte may (AGENTIC-1140); listing an unknown workspace answers {"data": []}.
//   - connector_type (slug or display name, any case), definition_id and source_template_id
//     may come together, as the Go CLI (type + template) and the Python SDK (definition +
//     template) send them; they answer 422 only when they name different connectors. Unknown
//     values answer 422 (the create endpoint declares 422, not 404), none of them 422, and a
//     type or definition alone answers 422 when the connector has several templates (Jira and
//     Salesforce have two). Unknown top-level fields: 422.
//   - Credentials may come at top level (credentials), inside replication_config.credentials
//     (both: merged, top level wins per field), or be replaced by server_side_oauth_secret_id
//     for a connector that offers OAuth. None of the three (and no replication_config): 422.
//     Credentials that hold every field of none of the connector's auth schemes: 400. Schemes:
//     token {token}; personal access token {personal_access_token}; OAuth access token and
//     private app {access_token}; OAuth {client_id, client_secret, refresh_token}; API token
//     {email, api_token}. GitHub takes token, personal access token or OAuth access token;
//     HubSpot OAuth or a private app token; Zendesk Support and Jira an API token too.
//   - Responses show credentials as "**********" under replication_config.credentials.
//   - A deleted connector is gone from GET /{id} at once but is still listed by the next
//     list call of its workspace (deleteListLag), then disappears.
//   - Checks (POST /integrations/connectors/check and /{id}/check) answer by one rule: a
//     status the fault plan forces (check_statuses: pending, running, cancelled, inconclusive,
//     skipped; waited check_latency before answering) wins; otherwise a credential value
//     starting with "invalid" answers "failed" with error_message and failure_reason
//     (origin source, type config_error), and anything else "succeeded".
//   - Bad or expired tokens answer 401, a scoped token used on another workspace 403, an
//     X-Organization-Id other than the sandbox's organization 403. Scoped tokens minted before
//     a Reset or a workspace DELETE answer 401 (their workspace is gone). A token's act.sub is
//     never checked: the workspace is the one io.airbyte.auth.workspace_scope names.
//
// # Strict auth
//
// Config.StrictAuth (provisioner sandbox --strict-auth) takes on each operation only the bearer
// token the specs document: the application token for /integrations/* (connectors, checks,
// execute, templates, definitions, integrations/sources), the token mints and /workspaces*; a
// scoped token for scoped-token info, /embedded/sources* and /embedded/source-templates*. The
// other kind answers 403. Off, either token passes wherever its caller may act, as the seed
// docs' examples (scoped tokens on connector calls) assume.
//
// # Faults
//
// Faults.Rules is keyed by operation; "*" applies to operations without a rule. Operations:
// token, scoped_token, scoped_token_info, widget_token, connectors_create, connectors_list,
// connectors_get, connectors_update, connectors_delete, connectors_check, sources_create,
// sources_list, sources_get, sources_update, sources_delete, source_templates_list,
// workspaces_list, workspaces_get, workspaces_update, workspaces_delete, workspaces_stats,
// source_templates_get, source_definitions_list, source_definitions_get, connectors_execute.
// Every decision derives from (Seed, operation, the operation's request number), so one seed
// replays the same faults for the same sequence of requests of each operation. A request first
// waits its latency, then may be dropped, then rate limited (429 + Retry-After), then answered an injected error status; creates
// (connectors_create, sources_create) may then commit and fail (500 or a dropped connection).
//
// # Admin endpoints (not under /api/v1, no auth)
//
//	GET  /_sandbox/healthz                        {"status":"ok"}
//	GET  /_sandbox/stats                          Stats as JSON
//	GET  /_sandbox/connectors?workspace_name=W    []Connector of W: credential field names and
//	                                              credentials_sha256, the hex SHA-256 of the credentials
//	                                              as json.Marshal writes a map[string]string (compact,
//	                                              keys sorted), never the values
//	GET  /_sandbox/faults                         the current fault plan
//	PUT  /_sandbox/faults                         replace the fault plan: Faults as JSON, durations as
//	                                              Go duration strings, e.g.
//	                                              {"rules":{"connectors_create":{"latency":"50ms","latency_jitter":"10ms",
//	                                              "error_rates":{"503":0.05},"rate_limit_burst":{"every":10,"length":2,"retry_after":"1s"},
//	                                              "commit_then_fail":0.1,"drop_connection":0.01},
//	                                              "connectors_check":{"check_statuses":{"pending":0.2},"check_latency":"2s"}}}
//	POST /_sandbox/reset                          forget all state and counters (204)
package sandbox
