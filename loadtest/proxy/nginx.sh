# Sourced by the proxy benchmarks: nginx configured as our proxy is (same upstreams, keep-alive
# pool, forwarded headers, request id and `traceparent`, round robin), so that the two are compared
# like for like. Expects `replica_ports` (two ports) and `out` set.

# Writes $out/nginx/nginx.conf: nginx on 127.0.0.1:$1 with $2 worker processes.
write_nginx_conf() { # $1 = port, $2 = worker processes
  mkdir -p "$out/nginx"
  cat > "$out/nginx/nginx.conf" <<EOF
daemon off;
worker_processes $2;
pid $PWD/$out/nginx/nginx.pid;
error_log $PWD/$out/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $PWD/$out/nginx/body;
  proxy_temp_path $PWD/$out/nginx/proxy;
  fastcgi_temp_path $PWD/$out/nginx/fastcgi;
  uwsgi_temp_path $PWD/$out/nginx/uwsgi;
  scgi_temp_path $PWD/$out/nginx/scgi;
  keepalive_requests 1000000;
  upstream user {
    server 127.0.0.1:${replica_ports[0]} max_fails=3 fail_timeout=2s;
    server 127.0.0.1:${replica_ports[1]} max_fails=3 fail_timeout=2s;
    keepalive 512;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$1;
    location / {
      proxy_pass http://user;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Request-Id \$request_id;
      # Ours passes on a W3C trace context, and the replicas parse it (about 3 % of their
      # throughput): nginx sends one as well, so both ask the same of the backends.
      proxy_set_header traceparent "00-\$request_id-00f067aa0ba902b7-01";
      proxy_connect_timeout 1s;
      proxy_read_timeout 30s;
      proxy_next_upstream error timeout;
    }
  }
}
EOF
}
