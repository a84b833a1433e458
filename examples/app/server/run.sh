#!/bin/sh
echo "server $(cat /app/release.txt 2>/dev/null || echo dev)"
