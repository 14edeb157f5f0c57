"""The gateway's routes, one router per resource, in the order the app includes them."""
